package report

import "time"

// Nginx is the report's section on the running nginx: what it loaded
// compared with the disk and with DNS now.
type Nginx struct {
	// Running: nginx's master was found.
	Running bool `json:"running"`
	// Error says why it was not found (or cannot be seen).
	Error string `json:"error,omitempty"`
	// LastReload is when nginx last loaded its configuration.
	LastReload *time.Time `json:"last_reload,omitempty"`
	// ReloadPending lists the files changed since that load; Changes
	// what a reload would change in the targets (when known).
	ReloadPending []PendingFile `json:"reload_pending,omitempty"`
	Changes       []string      `json:"changes,omitempty"`
	// WouldFail: the next reload or restart would fail, with nginx's
	// message.
	WouldFail []Failure `json:"would_fail,omitempty"`
	// Stale lists static hostname servers whose name no longer
	// resolves to the addresses nginx dials.
	Stale []Stale `json:"stale,omitempty"`
	// Unknown lists static hostname servers whose nginx addresses the
	// exporter cannot know (nginx loaded before it looked, and no
	// worker was seen dialling them).
	Unknown []string `json:"unknown,omitempty"`
	// Messages are the plain-words lines of the table, each with the
	// command that fixes it.
	Messages []string `json:"messages,omitempty"`
}

// PendingFile is a file changed since nginx's last load.
type PendingFile struct {
	Path   string `json:"path"`
	Kind   string `json:"kind"`
	Change string `json:"change"`
}

// Failure is a reason the next reload or restart would fail.
type Failure struct {
	Reason  string `json:"reason"`
	Message string `json:"nginx_message"`
}

// Stale is a server nginx dials at an address DNS no longer gives.
type Stale struct {
	Upstream string   `json:"upstream"`
	Server   string   `json:"server"`
	Nginx    []string `json:"nginx_addresses"`
	DNS      []string `json:"dns_addresses"`
	Source   string   `json:"source"`
}

// Problems reports whether the section asks for action: a reload that
// would fail, or an address nginx dials that DNS no longer gives.
func (n *Nginx) Problems() bool {
	return n != nil && (len(n.WouldFail) > 0 || len(n.Stale) > 0)
}
