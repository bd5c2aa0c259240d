// Package config reads the exporter's own, optional configuration file:
// per-upstream overrides of the probe request. nginx's configuration says
// where and how to connect; this file only says what to ask for where nginx
// leaves it to the client (the request method, path and headers) and what
// answer counts as healthy.
//
// The file is YAML and decoded strictly: an unknown field is an error.
//
//	defaults:                   # applies to every upstream
//	  http:
//	    method: GET             # default GET
//	    path: /                 # default /; may carry a query string
//	    expect_status: []       # empty: any status is success, as for nginx
//	    headers: {X-Probe: "1"} # extra request headers
//	  fastcgi:
//	    ping_path: ""           # empty: FCGI_GET_VALUES instead of a request
//	upstreams:
//	  - upstream: backend       # the metrics' upstream label: the upstream{}
//	                            # name, or the *_pass address of an implicit one
//	    http: {method: HEAD, path: /healthz, expect_status: [200, 204]}
//	    fastcgi: {ping_path: /ping}
//
// An upstream entry overrides the defaults field by field; its headers are
// added to the default headers, replacing those of the same name. Header
// values are sent to backends and never logged.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/nginx-upstream-exporter/nginx_upstream_exporter/prober"
)

// Config is the parsed file. The nil *Config is valid and means "no file":
// every upstream gets the built-in defaults.
type Config struct {
	Defaults  Overrides  `yaml:"defaults"`
	Upstreams []Upstream `yaml:"upstreams"`

	byName map[string]*Upstream
}

// Upstream holds the overrides for one upstream.
type Upstream struct {
	Upstream  string `yaml:"upstream"`
	Overrides `yaml:",inline"`
}

// Overrides are the probe settings one level (defaults or an upstream)
// sets; nil or zero fields leave the level below in force.
type Overrides struct {
	HTTP    *HTTPOverrides    `yaml:"http"`
	FastCGI *FastCGIOverrides `yaml:"fastcgi"`
}

// HTTPOverrides shape the request of the http, https, uwsgi, scgi and grpc
// probes (method and path where the protocol has them).
type HTTPOverrides struct {
	Method       string            `yaml:"method"`
	Path         string            `yaml:"path"`
	ExpectStatus []int             `yaml:"expect_status"`
	Headers      map[string]string `yaml:"headers"`
}

// FastCGIOverrides select the FastCGI exchange.
type FastCGIOverrides struct {
	PingPath string `yaml:"ping_path"`
}

// Load reads and validates the file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading exporter config: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Parse decodes and validates a configuration document.
func Parse(data []byte) (*Config, error) {
	c := &Config{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("parsing exporter config: %w", err)
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("parsing exporter config: more than one YAML document")
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Config) validate() error {
	if err := c.Defaults.validate("defaults"); err != nil {
		return err
	}
	c.byName = make(map[string]*Upstream, len(c.Upstreams))
	for i := range c.Upstreams {
		u := &c.Upstreams[i]
		where := fmt.Sprintf("upstreams[%d]", i)
		if u.Upstream == "" {
			return fmt.Errorf("%s.upstream: must name an upstream", where)
		}
		if _, dup := c.byName[u.Upstream]; dup {
			return fmt.Errorf("%s.upstream: %q is listed twice", where, u.Upstream)
		}
		if err := u.Overrides.validate(where); err != nil {
			return err
		}
		c.byName[u.Upstream] = u
	}
	return nil
}

func (o *Overrides) validate(where string) error {
	if h := o.HTTP; h != nil {
		if h.Method != "" && !isToken(h.Method) {
			return fmt.Errorf("%s.http.method: %q is not an HTTP method", where, h.Method)
		}
		if h.Path != "" {
			if err := checkPath(h.Path); err != nil {
				return fmt.Errorf("%s.http.path: %w", where, err)
			}
		}
		for i, s := range h.ExpectStatus {
			if s < 100 || s > 599 {
				return fmt.Errorf("%s.http.expect_status[%d]: %d is not an HTTP status (100-599)", where, i, s)
			}
		}
		for name, value := range h.Headers {
			if !isToken(name) {
				return fmt.Errorf("%s.http.headers: %q is not a valid header name", where, name)
			}
			switch strings.ToLower(name) {
			case "host", "connection", "content-length", "transfer-encoding", "te", "upgrade":
				return fmt.Errorf("%s.http.headers: %q is set by the probe as nginx sets it and cannot be overridden", where, name)
			}
			if strings.ContainsAny(value, "\r\n\x00") {
				// The value itself is not repeated: it may be a secret.
				return fmt.Errorf("%s.http.headers.%s: value contains CR, LF or NUL", where, name)
			}
		}
	}
	if f := o.FastCGI; f != nil && f.PingPath != "" {
		if err := checkPath(f.PingPath); err != nil {
			return fmt.Errorf("%s.fastcgi.ping_path: %w", where, err)
		}
	}
	return nil
}

func checkPath(p string) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("%q must start with /", p)
	}
	if len(p) > 4096 {
		return errors.New("longer than 4096 bytes")
	}
	for i := 0; i < len(p); i++ {
		if p[i] <= ' ' || p[i] == 0x7f {
			return fmt.Errorf("%q contains a space or control character", p)
		}
	}
	return nil
}

// isToken reports an RFC 9110 token (method and header names).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// ProbeSettings returns the merged overrides for upstream: its own entry
// over the defaults. It works on a nil *Config.
func (c *Config) ProbeSettings(upstream string) (HTTPOverrides, FastCGIOverrides) {
	var h HTTPOverrides
	var f FastCGIOverrides
	if c == nil {
		return h, f
	}
	h.merge(c.Defaults.HTTP)
	f.merge(c.Defaults.FastCGI)
	if u := c.lookup(upstream); u != nil {
		h.merge(u.HTTP)
		f.merge(u.FastCGI)
	}
	return h, f
}

func (c *Config) lookup(name string) *Upstream {
	if c.byName != nil {
		return c.byName[name]
	}
	for i := range c.Upstreams {
		if c.Upstreams[i].Upstream == name {
			return &c.Upstreams[i]
		}
	}
	return nil
}

func (h *HTTPOverrides) merge(o *HTTPOverrides) {
	if o == nil {
		return
	}
	if o.Method != "" {
		h.Method = o.Method
	}
	if o.Path != "" {
		h.Path = o.Path
	}
	if o.ExpectStatus != nil {
		h.ExpectStatus = o.ExpectStatus
	}
	if len(o.Headers) > 0 {
		merged := make(map[string]string, len(h.Headers)+len(o.Headers))
		for k, v := range h.Headers {
			merged[k] = v
		}
		for k, v := range o.Headers {
			for old := range merged {
				if strings.EqualFold(old, k) {
					delete(merged, old)
				}
			}
			merged[k] = v
		}
		h.Headers = merged
	}
}

func (f *FastCGIOverrides) merge(o *FastCGIOverrides) {
	if o != nil && o.PingPath != "" {
		f.PingPath = o.PingPath
	}
}

// Apply writes the overrides into the probe settings of a target. Headers
// are sorted by name so that targets built from the same file send the
// same request.
func (h HTTPOverrides) Apply(s *prober.HTTPSettings) {
	if h.Method != "" {
		s.Method = h.Method
	}
	if h.Path != "" {
		s.Path = h.Path
	}
	if h.ExpectStatus != nil {
		s.ExpectStatus = append([]int(nil), h.ExpectStatus...)
	}
	if len(h.Headers) > 0 {
		names := make([]string, 0, len(h.Headers))
		for k := range h.Headers {
			names = append(names, k)
		}
		sort.Strings(names)
		s.Headers = s.Headers[:0:0]
		for _, k := range names {
			s.Headers = append(s.Headers, [2]string{k, h.Headers[k]})
		}
	}
}

// Apply writes the overrides into a target's FastCGI settings.
func (f FastCGIOverrides) Apply(s *prober.FastCGISettings) {
	if f.PingPath != "" {
		s.PingPath = f.PingPath
	}
}

// Apply writes the merged overrides for upstream into a probe target. It
// works on a nil *Config and makes *Config a discovery.Overrides.
func (c *Config) Apply(upstream string, t *prober.Peer) {
	h, f := c.ProbeSettings(upstream)
	if t.Exchange == nil {
		t.Exchange = &prober.Exchange{}
	}
	h.Apply(&t.HTTP)
	f.Apply(&t.FastCGI)
}
