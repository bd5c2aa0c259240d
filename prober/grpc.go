package prober

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"strconv"
	"strings"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

var (
	errGRPCRejected = errors.New("upstream rejected request")
	errGRPCGoAway   = errors.New("upstream sent goaway")
	errGRPCFrame    = errors.New("upstream sent invalid HTTP/2 frame")
)

const grpcHealthPath = "/grpc.health.v1.Health/Check"

// grpcFrameSlack bounds the bytes read besides the response header
// (SETTINGS, WINDOW_UPDATE, PING, a DATA frame) so that a backend cannot
// feed the probe forever.
const grpcFrameSlack = 64 << 10

func grpcRequest(t *Peer, secure bool) []byte {
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	scheme := "http"
	if secure {
		scheme = "https"
	}
	enc.WriteField(hpack.HeaderField{Name: ":method", Value: "POST"})
	enc.WriteField(hpack.HeaderField{Name: ":scheme", Value: scheme})
	enc.WriteField(hpack.HeaderField{Name: ":path", Value: grpcHealthPath})
	enc.WriteField(hpack.HeaderField{Name: ":authority", Value: hostHeader(t)})
	enc.WriteField(hpack.HeaderField{Name: "content-type", Value: "application/grpc"})
	enc.WriteField(hpack.HeaderField{Name: "te", Value: "trailers"})
	for _, h := range t.Request().HTTP.Headers {
		enc.WriteField(hpack.HeaderField{Name: strings.ToLower(h[0]), Value: h[1], Sensitive: true})
	}
	// HealthCheckRequest{service = 1}: a length-prefixed protobuf message.
	svc := t.Request().GRPC.Service
	var field []byte
	if svc != "" {
		// Field 1, wire type 2 (length-delimited): tag, varint length.
		field = binary.AppendUvarint([]byte{0x0a}, uint64(len(svc)))
		field = append(field, svc...)
	}
	msg := make([]byte, 0, 5+len(field))
	msg = binary.BigEndian.AppendUint32(append(msg, 0), uint32(len(field)))
	msg = append(msg, field...)

	var out bytes.Buffer
	out.WriteString(http2.ClientPreface)
	fr := http2.NewFramer(&out, nil)
	fr.WriteSettings(http2.Setting{ID: http2.SettingEnablePush, Val: 0})
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block.Bytes(), EndHeaders: true})
	fr.WriteData(1, true, msg)
	return out.Bytes()
}

// grpcExchange speaks HTTP/2 with prior knowledge as `grpc_pass` does (or
// after the TLS handshake with ALPN h2 for grpcs://): the connection
// preface and SETTINGS, then one cheap call, grpc.health.v1.Health/Check,
// whose response header gives the HTTP/2 :status nginx would pass on. A
// server without the health service still answers (grpc-status 12,
// UNIMPLEMENTED) and counts as up: nginx would have proxied its calls.
func grpcExchange(c *conversation, t *Peer) {
	logger := t.logger()
	if err := c.write(grpcRequest(t, t.TLS != nil)); err != nil {
		c.fail(err, speaksHTTP2)
		return
	}
	// The server's preface is a SETTINGS frame: check the first frame
	// header before handing bytes to the framer, so that an HTTP/1 or TLS
	// answer is named for what it is.
	for c.n < 9 {
		if err := c.fill(); err != nil {
			c.fail(err, speaksHTTP2)
			return
		}
		if foreign(c.buf[:c.n], speaksHTTP2) != "" {
			c.failWith(outcomeForeign, errOtherProtocol, speaksHTTP2, "")
			return
		}
	}
	if c.buf[3] != byte(http2.FrameSettings) {
		c.failWith(outcomeInvalidHeader, errGRPCFrame, speaksHTTP2, "first frame is not SETTINGS")
		return
	}
	c.limit = c.size + grpcFrameSlack
	fr := http2.NewFramer(nil, c)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	fr.MaxHeaderListSize = uint32(c.size)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			var ce http2.ConnectionError
			var se http2.StreamError
			switch {
			case errors.As(err, &ce), errors.As(err, &se), errors.Is(err, http2.ErrFrameTooLarge):
				c.failWith(outcomeInvalidHeader, err, speaksHTTP2, "")
			default:
				c.fail(err, speaksHTTP2)
			}
			return
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				var ack [9]byte
				ack[3], ack[4] = byte(http2.FrameSettings), byte(http2.FlagSettingsAck)
				if err := c.write(ack[:]); err != nil {
					c.fail(err, speaksHTTP2)
					return
				}
			}
		case *http2.MetaHeadersFrame:
			if f.StreamID != 1 {
				continue
			}
			if f.Truncated {
				c.failWith(outcomeBufferFull, errBufferFull, speaksHTTP2, "")
				return
			}
			c.headerDone()
			status, err := strconv.Atoi(f.PseudoValue("status"))
			if err != nil {
				c.failWith(outcomeInvalidHeader, errGRPCFrame, speaksHTTP2, "no valid :status")
				return
			}
			if logger.Enabled(context.Background(), slog.LevelDebug) {
				grpcStatus := ""
				for _, h := range f.RegularFields() {
					if h.Name == "grpc-status" {
						grpcStatus = h.Value
					}
				}
				logger.Debug("gRPC health check answered", "status", status, "grpc_status", grpcStatus)
			}
			finishStatus(c, t, status)
			return
		case *http2.RSTStreamFrame:
			if f.StreamID == 1 {
				c.failWith(outcomeRejected, errGRPCRejected, speaksHTTP2, "upstream rejected request with error "+strconv.Itoa(int(f.ErrCode)))
				return
			}
		case *http2.GoAwayFrame:
			c.failWith(outcomeRejected, errGRPCGoAway, speaksHTTP2, "upstream sent goaway with error "+strconv.Itoa(int(f.ErrCode)))
			return
		}
	}
}
