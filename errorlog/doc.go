// Package errorlog reads nginx's own error log and counts the upstream
// errors nginx logged for real requests, per server and per reason, in the
// vocabulary the probes use. It is a small pipeline, one file per room:
//
//   - find.go: which logs nginx writes (every error_log of the loaded
//     tree, the --nginx.error-log paths, a syslog receiver);
//   - tail.go, syslog.go: reading them from the end, rotation-safe, with
//     bounded memory, woken by inotify with a slow fallback poll;
//   - parse.go: one line into level, reason, stage and peer, keyed on
//     errno numbers and nginx's fixed field order;
//   - attribute.go: a peer and protocol to exactly one target of the
//     loaded configuration, labels only ever taken from that set;
//   - export.go: the counters the collector exposes;
//   - recent.go: the recent part of each log, for diagnose.
//
// Other signals read the evidence through Reader: Snapshot (the counters)
// and UnknownPeers, the peers nginx logged errors for that no target of
// the loaded configuration yields although their upstream is known — the
// trace of an address nginx still uses after the configuration stopped
// yielding it (a stale DNS answer).
package errorlog
