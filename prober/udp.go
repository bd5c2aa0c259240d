package prober

// udpExchange probes a server nginx reaches over UDP (a stream server with
// `listen … udp`), or over a unix datagram socket.
//
// What can honestly be known is little. connect() on a datagram socket
// only records the peer; nothing is sent. The probe sends one empty
// datagram, which no protocol answers and none acts upon, and waits:
//
//   - an ICMP port unreachable (the kernel of the server says no socket is
//     bound there) comes back on the connected socket as ECONNREFUSED,
//     and so does a stale unix datagram socket: connection_refused, what
//     nginx logs when the same happens to a client's datagram. Other ICMP
//     errors map the same way (host or network unreachable).
//   - a datagram back: something is bound there and answers. Success.
//   - silence: the port may be open (most servers ignore an empty
//     datagram), or a firewall may drop datagrams or ICMP, or ICMP may be
//     rate-limited on the way. That is no verdict (InconclusiveNoAnswer),
//     neither success nor a failure reason. nginx itself counts
//     an unanswered UDP session as normal ("udp timed out" at level info)
//     unless proxy_responses says how many answers to expect.
//
// The wait is the shorter of the connect and read timeouts: an ICMP
// error comes back within one round trip, and nginx's timeouts bound what
// it would wait for the peer.
func udpExchange(c *conversation, t *Peer) {
	if err := c.write(nil); err != nil {
		// ECONNREFUSED from an ICMP error of an earlier datagram on
		// this socket, or a unix peer that went away.
		c.fail(err, "")
		return
	}
	wait := min(orDefault(t.ConnectTimeout), orDefault(t.ReadTimeout))
	c.conn.SetReadDeadline(c.until(wait))
	c.armed()
	c.buffer()
	_, err := c.conn.Read(c.buf)
	if err == nil {
		// A datagram, even an empty one, came back.
		c.gotBytes()
		c.r.Success = true
		return
	}
	if isTimeout(err) && !pastDeadline(c.ctx) {
		c.failWith(outcomeNoAnswer, err, "", "no answer and no ICMP error: the port may be open, or datagrams or ICMP are filtered")
		return
	}
	// An ICMP error (classified like connect's errno), or the
	// exporter's own bound on the probe (no verdict either).
	c.fail(err, "")
}
