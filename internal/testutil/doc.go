// Package testutil holds the helpers the tests of every package share, so
// that none is copied between packages: generated certificates, free
// loopback ports, the exporter binary built once per test binary, and
// in-process backends. Its sub-package dnstest is a DNS responder.
//
// Everything here binds to 127.0.0.1 only: tests never send traffic
// anywhere else.
package testutil
