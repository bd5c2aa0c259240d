{
  _config+:: {
    // Selector matching the exporter's scrape job(s). Every query of the mixin
    // starts from it, so several exporters (one per nginx host) can share a
    // Prometheus server. Example: 'job=~"nginx-upstream.*",env="prod"'.
    exporterSelector: 'job="nginx_upstream_exporter"',

    // Labels that identify one exporter (one nginx instance). Per-upstream
    // aggregations keep these plus `upstream`; joins between per-target series
    // use these plus the target labels below. The alert descriptions and the
    // dashboards assume `job` and `instance` are among them.
    instanceLabels: ['job', 'instance'],

    // Labels that identify one target on one exporter (docs/metrics.md).
    targetLabels: ['upstream', 'server', 'address', 'protocol'],

    // A failed scrape makes Prometheus mark every series of the exporter
    // stale, so a plain `metric == 0` returns nothing for one evaluation and
    // resets a pending alert or resolves a firing one. Alerts look at the last
    // sample within this window instead (`last_over_time`). It must cover at
    // least two scrape intervals. Bigger values delay the resolution of alerts
    // on targets that were removed from the nginx configuration.
    scrapeGapWindow: '2m',

    // Window of rate()/increase() and *_over_time() averages in alerts and
    // recording rules (dashboards use $__rate_interval instead).
    rateWindow: '5m',

    // NginxUpstreamAllServersDown (critical): no server nginx could use for
    // an upstream (primary or backup, not marked `down`) passes its probe.
    allServersDownFor: '2m',

    // NginxUpstreamServingFromBackup (warning): every primary server fails
    // and nginx is running on its backup servers.
    servingFromBackupFor: '5m',

    // NginxUpstreamServerDown (warning): one primary server fails while
    // others still serve the upstream.
    serverDownFor: '5m',

    // NginxUpstreamBackupServerDown (info): a backup server fails, so the
    // upstream has no working fallback.
    backupServerDownFor: '15m',

    // NginxUpstreamServerLatencyNearTimeout (warning): share of the nginx
    // timeout that applies to a phase (read timeout for the time to the
    // response header, connect timeout for connect and TLS handshake) that
    // the probes spend on average over latencyWindow. Past 1, nginx answers 504.
    latencyTimeoutRatio: 0.8,
    latencyWindow: '5m',
    latencyNearTimeoutFor: '10m',

    // NginxUpstreamServerHTTPErrors (warning): the server answers the probe
    // with a status at or above this value. nginx passes such answers to the
    // client unless proxy_next_upstream names them.
    httpErrorStatusThreshold: 500,
    httpErrorsFor: '5m',

    // NginxUpstreamServerFlapping (warning): a primary server whose probe
    // result changed at least flappingChanges times within flappingWindow.
    flappingChanges: 4,
    flappingWindow: '15m',
    flappingFor: '5m',

    // NginxUpstreamCertificateExpiringSoon (warning): days left before the
    // leaf certificate of an https/grpcs server expires.
    certificateExpiryWarningDays: 14,
    certificateExpiringFor: '15m',
    // NginxUpstreamCertificateExpired: nginx only rejects an expired
    // certificate with `proxy_ssl_verify on` (the probe then also fails with
    // tls_certificate_invalid). Lower this to 'warning' if your locations do
    // not verify upstream certificates.
    certificateExpiredSeverity: 'critical',
    certificateExpiredFor: '5m',

    // NginxUpstreamExporterConfigReloadFailed (warning): the exporter could
    // not load the nginx configuration and keeps probing the old targets.
    configReloadFailedFor: '10m',

    // NginxUpstreamDynamicTargetsUnprobed (info): `*_pass` directives built
    // from request variables cannot be probed.
    dynamicTargetsFor: '1h',

    // NginxUpstreamExporterDown / NginxUpstreamExporterAbsent (warning).
    exporterDownFor: '5m',
    exporterAbsentFor: '15m',

    // NginxUpstreamExporterProbesStale (warning): seconds since a target's
    // last finished probe. Should be well above --probe.interval plus the
    // longest probe timeout.
    probeStaleSeconds: 300,
    probeStaleFor: '5m',

    // NginxUpstreamExporterScheduleLag (warning): quantile of how late probes
    // start, and the lag in seconds that is too much.
    scheduleLagQuantile: 0.9,
    scheduleLagThresholdSeconds: 10,
    scheduleLagFor: '15m',

    // Pattern of runbook links; %s is the lowercase alert name, which is the
    // GitHub anchor of the alert's heading in docs/runbook.md.
    runbookURLPattern: 'https://github.com/nginx-upstream-exporter/nginx_upstream_exporter/blob/main/docs/runbook.md#%s',

    // Dashboards.
    dashboardNamePrefix: 'nginx upstreams / ',
    dashboardTags: ['nginx', 'nginx-upstream-exporter'],
    dashboardRefresh: '30s',
    dashboardTimezone: 'utc',
    dashboardPeriod: 'now-6h',
    // Default data source of the `datasource` variable (a regex over names).
    datasourceRegex: '',
  },
}
