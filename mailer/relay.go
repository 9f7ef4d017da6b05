package mailer

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"
)

// longAgo is a deadline in the past: setting it makes blocked I/O return.
var longAgo = time.Unix(1, 0)

// Relay delivers messages to one SMTP relay over a small pool of reused
// connections. It is safe for concurrent use; at most Config.Conns
// connections are open at any time, and Send waits for one to be free.
//
// Connections are opened when needed, and the connection setup (TLS, EHLO,
// AUTH) is done by go-mail. Each message is one MAIL/RCPT/DATA transaction,
// pipelined when the relay offers it and the message has one recipient;
// a connection that fails is dropped. When a connection that had already
// carried messages fails before the relay accepted DATA (typically because
// the relay closed it while idle), the message is tried once more on a
// fresh connection.
type Relay struct {
	log         *slog.Logger
	addr        string // host:port, dialled as is
	host        string
	implicitTLS bool
	tlsConfig   *tls.Config
	timeout     time.Duration
	idleTimeout time.Duration
	options     []mail.Option // for mail.NewClient, without the dialer
	nextID      atomic.Uint64

	slots chan struct{} // one token per connection in use

	mu      sync.Mutex
	idle    []*conn // most recently used last
	closed  bool
	closers sync.WaitGroup // idle timers closing their connection
}

// conn is one open connection to the relay.
type conn struct {
	id   uint64
	smtp *smtp.Client
	raw  net.Conn // the TCP connection under smtp, for deadlines

	// pipelining: the relay offers PIPELINING; then mailParams are what
	// go-mail would add to MAIL FROM (see deliverPipelined).
	pipelining bool
	mailParams string

	// guarded by Relay.mu while the connection is idle
	gen   uint64 // which idle period timer belongs to
	timer *time.Timer
}

// NewRelay checks cfg and returns a Relay. No connection is opened yet. A
// nil log discards log lines.
func NewRelay(cfg Config, log *slog.Logger) (*Relay, error) {
	ep, err := parseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Relay{
		log:         log.With("relay", ep.redacted),
		addr:        net.JoinHostPort(ep.host, strconv.Itoa(ep.port)),
		host:        ep.host,
		implicitTLS: ep.implicitTLS,
		timeout:     orDefault(cfg.Timeout, DefaultTimeout),
		idleTimeout: orDefault(cfg.IdleTimeout, DefaultIdleTimeout),
		slots:       make(chan struct{}, orDefault(cfg.Conns, DefaultConns)),
	}
	r.tlsConfig = &tls.Config{}
	if cfg.TLSConfig != nil {
		r.tlsConfig = cfg.TLSConfig.Clone()
	}
	if r.tlsConfig.ServerName == "" {
		r.tlsConfig.ServerName = ep.host
	}
	if r.tlsConfig.MinVersion == 0 {
		r.tlsConfig.MinVersion = tls.VersionTLS12
	}

	// Not WithSSL for smtps: our dialer does the TLS handshake itself, and
	// go-mail then sees an encrypted connection, which its AUTH discovery
	// needs (with WithSSL and a custom dialer it would not). Not
	// WithTLSPortPolicy: it would move port 25 to 587 with a fallback.
	r.options = []mail.Option{
		mail.WithPort(ep.port),
		mail.WithTimeout(r.timeout),
		mail.WithTLSPolicy(mail.TLSOpportunistic),
		mail.WithTLSConfig(r.tlsConfig),
	}
	if cfg.HELO != "" {
		r.options = append(r.options, mail.WithHELO(cfg.HELO))
	}
	if ep.user != "" {
		r.options = append(r.options,
			mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover),
			mail.WithUsername(ep.user),
			mail.WithPassword(ep.pass))
	}
	if _, err := mail.NewClient(r.host, r.options...); err != nil {
		return nil, fmt.Errorf("mailer: relay client: %w", err)
	}
	return r, nil
}

// Send delivers msg, a complete RFC 5322 message with CRLF line endings, to
// the relay for the recipients in to. The bytes go out as they are, except
// what SMTP itself requires: a bare LF is sent as CRLF, and a message that
// does not end with CRLF gets one.
//
// When the relay refuses some recipients for good and accepts others, the
// message goes to the accepted ones and Send returns a *PermanentError whose
// Recipients names the refused ones. When any recipient is refused
// temporarily, nothing is sent and the error is temporary, so a retry of the
// whole message reaches everyone once.
//
// When ctx ends, Send stops and returns an error wrapping ctx.Err().
func (r *Relay) Send(ctx context.Context, from string, to []string, msg []byte) error {
	start := time.Now()
	connID, err := r.send(ctx, from, to, msg)
	switch {
	case err == nil:
		if r.log.Enabled(ctx, slog.LevelDebug) {
			r.log.DebugContext(ctx, "message sent", "msg_id", messageID(msg), "from", from, "to", to,
				"bytes", len(msg), "conn", connID, "took", time.Since(start))
		}
	case ctx.Err() != nil && !IsPermanent(err):
		r.log.DebugContext(ctx, "send aborted", "msg_id", messageID(msg), "to", to, "err", err)
	default:
		r.log.WarnContext(ctx, "send failed", "msg_id", messageID(msg), "from", from, "to", to,
			"permanent", IsPermanent(err), "conn", connID, "err", err)
	}
	return err
}

func (r *Relay) send(ctx context.Context, from string, to []string, msg []byte) (connID uint64, err error) {
	if err := checkEnvelope(from, to); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("mailer: send: %w", err)
	}
	select {
	case r.slots <- struct{}{}:
	case <-ctx.Done():
		return 0, fmt.Errorf("mailer: waiting for a relay connection: %w", ctx.Err())
	}
	defer func() { <-r.slots }() // after the connection went back to the pool

	c, reused, err := r.get(ctx)
	if err != nil {
		return 0, err
	}
	res := r.deliver(ctx, c, from, to, msg)
	if reused && res.retry && ctx.Err() == nil {
		r.log.DebugContext(ctx, "reused connection failed, retrying on a new one", "conn", c.id, "err", res.err)
		r.drop(c)
		if c, err = r.dial(ctx); err != nil {
			return 0, err
		}
		res = r.deliver(ctx, c, from, to, msg)
	}
	if res.broken {
		r.drop(c)
	} else {
		r.put(c)
	}
	return c.id, res.err
}

// checkEnvelope refuses what no relay would accept.
func checkEnvelope(from string, to []string) error {
	if len(to) == 0 {
		return &PermanentError{Message: "no recipients"}
	}
	if strings.ContainsAny(from, "\r\n<>") {
		return &PermanentError{Message: fmt.Sprintf("invalid sender %q", from)}
	}
	for _, rcpt := range to {
		if rcpt == "" || strings.ContainsAny(rcpt, "\r\n<>") {
			return &PermanentError{Message: fmt.Sprintf("invalid recipient %q", rcpt)}
		}
	}
	return nil
}

// result is the outcome of one transaction on one connection.
type result struct {
	err    error
	broken bool // drop the connection
	retry  bool // the connection failed (broken) before the relay accepted DATA
}

// deliver runs one mail transaction on c.
func (r *Relay) deliver(ctx context.Context, c *conn, from string, to []string, msg []byte) (res result) {
	stop := context.AfterFunc(ctx, func() { _ = c.raw.SetDeadline(longAgo) })
	defer func() {
		if !stop() { // ctx ended: the deadline may be poisoned at any moment
			res.broken = true
		}
	}()

	if err := c.arm(ctx, r.timeout); err != nil {
		return r.failure(ctx, err, false)
	}
	if c.pipelining && len(to) == 1 {
		return r.deliverPipelined(ctx, c, from, to[0], msg)
	}
	if err := c.smtp.Mail("<" + from + ">"); err != nil {
		return r.rset(ctx, c, r.senderRefused(ctx, from, err))
	}
	var replies rcptReplies
	for _, rcpt := range to {
		if err := c.arm(ctx, r.timeout); err != nil {
			return r.failure(ctx, err, false)
		}
		if err := c.smtp.Rcpt("<" + rcpt + ">"); !replies.add(rcpt, err) {
			return r.failure(ctx, err, false)
		}
	}
	if res, stop := replies.stop(r.addr, len(to)); stop {
		return r.rset(ctx, c, res)
	}

	if err := c.arm(ctx, r.timeout); err != nil {
		return r.failure(ctx, err, false)
	}
	w, err := c.smtp.Data()
	if err != nil {
		return r.rset(ctx, c, r.failure(ctx, err, false))
	}
	if res := r.body(ctx, c, w, msg); res.err != nil {
		return res
	}
	if len(replies.refused) > 0 {
		return result{err: permanent(replies.refusal, replies.refused)}
	}
	return result{}
}

// rcptReplies gathers a relay's replies to RCPT.
type rcptReplies struct {
	refused []string
	refusal error // the first 5xx reply
	later   error // the first 4xx reply
}

// add notes err, the reply to RCPT for rcpt, and reports false when it is
// no answer about the recipient (a 421, an I/O error): the connection
// failed.
func (v *rcptReplies) add(rcpt string, err error) bool {
	switch code := replyCode(err); {
	case err == nil:
	case code >= 500 && code <= 599:
		v.refused = append(v.refused, rcpt)
		if v.refusal == nil {
			v.refusal = err
		}
	case code >= 400 && code != 421:
		if v.later == nil {
			v.later = err
		}
	default:
		return false
	}
	return true
}

// stop returns the result that ends the transaction before DATA, if one
// does: a recipient refused for now holds the message back for all n (a
// retry then reaches each once), and all n refused end it for good.
func (v *rcptReplies) stop(addr string, n int) (result, bool) {
	switch {
	case v.later != nil:
		return result{err: fmt.Errorf("mailer: %s refused a recipient for now: %w", addr, v.later)}, true
	case len(v.refused) == n:
		return result{err: permanent(v.refusal, v.refused)}, true
	}
	return result{}, false
}

// deliverPipelined runs one mail transaction for one recipient on c, which
// offers PIPELINING (RFC 2920): MAIL, RCPT and DATA go out in one write and
// their three replies are read after it, then the message and its reply:
// two round trips instead of four, which is what limits a connection to a
// relay across the internet. With several recipients deliver waits for
// each reply instead: once DATA is open for the accepted ones, a recipient
// refused for now could no longer hold the message back.
func (r *Relay) deliverPipelined(ctx context.Context, c *conn, from, to string, msg []byte) result {
	t := c.smtp.Text
	// checkEnvelope has refused CR and LF in both addresses.
	fmt.Fprintf(t.W, "MAIL FROM:<%s>%s\r\nRCPT TO:<%s>\r\nDATA\r\n", from, c.mailParams, to)
	if err := t.W.Flush(); err != nil {
		return r.failure(ctx, err, false)
	}
	var errs [3]error
	for i, code := range [3]int{250, 25, 354} {
		if err := c.arm(ctx, r.timeout); err != nil { // each reply its own time, as unpipelined
			return r.failure(ctx, err, false)
		}
		if _, _, err := t.ReadResponse(code); err != nil {
			if replyCode(err) == 0 { // I/O or protocol error: the replies are lost
				return r.failure(ctx, err, false)
			}
			errs[i] = err
		}
	}
	mailErr, rcptErr, dataErr := errs[0], errs[1], errs[2]
	var (
		res     result
		replies rcptReplies
	)
	switch {
	case mailErr != nil:
		res = r.senderRefused(ctx, from, mailErr)
	case !replies.add(to, rcptErr):
		res = r.failure(ctx, rcptErr, false)
	case rcptErr != nil:
		res, _ = replies.stop(r.addr, 1) // the one recipient refused
	case dataErr != nil:
		return r.rset(ctx, c, r.failure(ctx, dataErr, false))
	default:
		return r.body(ctx, c, replyCloser{t.DotWriter(), t}, msg)
	}
	if dataErr == nil {
		// The relay opened DATA for a transaction it had refused. Closing
		// the connection now is the one way to end it without a message.
		res.broken = true
		return res
	}
	return r.rset(ctx, c, res)
}

// body writes msg to w, the relay's DATA writer, and closes w, which ends
// the data and reads the relay's verdict. The relay may have the message
// from here on: a failure is never retried.
func (r *Relay) body(ctx context.Context, c *conn, w io.WriteCloser, msg []byte) result {
	if err := c.arm(ctx, r.timeout); err != nil {
		return r.failure(ctx, err, true)
	}
	if _, err := w.Write(msg); err != nil {
		return r.failure(ctx, err, true)
	}
	if err := c.arm(ctx, r.timeout); err != nil {
		return r.failure(ctx, err, true)
	}
	if err := w.Close(); err != nil {
		return r.failure(ctx, err, true)
	}
	return result{}
}

// replyCloser is a DATA writer that reads the relay's reply when closed,
// as go-mail's does.
type replyCloser struct {
	io.WriteCloser
	t *textproto.Conn
}

func (w replyCloser) Close() error {
	if err := w.WriteCloser.Close(); err != nil {
		return err
	}
	_, _, err := w.t.ReadResponse(250)
	return err
}

// senderRefused classifies the relay's answer to MAIL FROM.
func (r *Relay) senderRefused(ctx context.Context, from string, err error) result {
	res := r.failure(ctx, err, false)
	if IsPermanent(res.err) {
		// A relay refusing our sender (530 authentication required,
		// 554 sender not verified) is refusing its configuration, not
		// this message: keep it temporary so messages wait for the fix.
		res.err = fmt.Errorf("mailer: relay %s refused the sender %s (check the relay account): %w", r.addr, from, err)
	}
	return res
}

// failure classifies err from a step of a transaction; dataStarted tells
// whether the relay had accepted DATA.
func (r *Relay) failure(ctx context.Context, err error, dataStarted bool) result {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return result{err: fmt.Errorf("mailer: send: %w", ctxErr), broken: true}
	}
	switch code := replyCode(err); {
	case code < 400 || code == 421 || code > 599: // I/O or protocol error, or the relay is closing the connection
		return result{err: fmt.Errorf("mailer: %s: %w", r.addr, err), broken: true, retry: !dataStarted}
	case code >= 500:
		return result{err: permanent(err, nil)}
	default:
		return result{err: fmt.Errorf("mailer: %s: %w", r.addr, err)}
	}
}

// rset ends a failed transaction on a connection that is still usable.
func (r *Relay) rset(ctx context.Context, c *conn, res result) result {
	if res.broken {
		return res
	}
	if err := c.arm(ctx, r.timeout); err != nil {
		res.broken = true
		return res
	}
	if err := c.smtp.Reset(); err != nil {
		res.broken = true
	}
	return res
}

// arm sets the deadline for the next command. Checking ctx after setting it
// means a cancellation is never overwritten: either ctx is already done
// here, or its AfterFunc runs later and moves the deadline to the past.
func (c *conn) arm(ctx context.Context, timeout time.Duration) error {
	if err := c.raw.SetDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	return ctx.Err()
}

// get returns an idle connection, or a new one.
func (r *Relay) get(ctx context.Context) (c *conn, reused bool, err error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, false, ErrClosed
	}
	if n := len(r.idle); n > 0 {
		c = r.idle[n-1]
		r.idle[n-1] = nil
		r.idle = r.idle[:n-1]
		c.timer.Stop() // if it fired anyway, expire finds c gone
		r.mu.Unlock()
		return c, true, nil
	}
	r.mu.Unlock()
	c, err = r.dial(ctx)
	return c, false, err
}

// put returns a healthy connection to the pool.
func (r *Relay) put(c *conn) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		r.quit(c)
		return
	}
	c.gen++
	gen := c.gen
	c.timer = time.AfterFunc(r.idleTimeout, func() { r.expire(c, gen) })
	r.idle = append(r.idle, c)
	r.mu.Unlock()
}

// expire closes c if it has been idle since idle period gen began.
func (r *Relay) expire(c *conn, gen uint64) {
	r.mu.Lock()
	i := slices.Index(r.idle, c)
	if r.closed || i < 0 || c.gen != gen {
		r.mu.Unlock()
		return
	}
	r.idle = slices.Delete(r.idle, i, i+1)
	r.closers.Add(1)
	r.mu.Unlock()
	defer r.closers.Done()

	r.log.Debug("closing idle connection", "conn", c.id)
	r.quit(c)
}

// quit says goodbye on a healthy connection and closes it.
func (r *Relay) quit(c *conn) {
	if err := c.raw.SetDeadline(time.Now().Add(r.timeout)); err == nil {
		_ = c.smtp.Quit()
	}
	_ = c.raw.Close()
}

// drop closes a connection that failed.
func (r *Relay) drop(c *conn) {
	_ = c.raw.Close()
}

// Close closes the idle connections and makes later Sends fail with
// ErrClosed. Connections in use by a Send are closed when it returns.
func (r *Relay) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	idle := r.idle
	r.idle = nil
	for _, c := range idle {
		c.timer.Stop()
	}
	r.mu.Unlock()

	var wg sync.WaitGroup
	for _, c := range idle {
		wg.Go(func() { r.quit(c) })
	}
	wg.Wait()
	r.closers.Wait()
	return nil
}

// dial opens a connection: TCP, then TLS for smtps, then go-mail's greeting,
// EHLO, STARTTLS and AUTH.
func (r *Relay) dial(ctx context.Context) (*conn, error) {
	var raw net.Conn
	stop := func() bool { return true }
	// go-mail formats host:port itself, which breaks IPv6 literals: dial r.addr.
	dialer := func(dctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		nc, err := d.DialContext(dctx, network, r.addr)
		if err != nil {
			return nil, err
		}
		raw = nc
		// go-mail runs the rest of the setup under deadlines only.
		stop = context.AfterFunc(ctx, func() { _ = nc.SetDeadline(longAgo) })
		if !r.implicitTLS {
			return nc, nil
		}
		tc := tls.Client(nc, r.tlsConfig)
		if err := tc.HandshakeContext(dctx); err != nil {
			return nil, err
		}
		return tc, nil
	}
	client, err := mail.NewClient(r.host, append(slices.Clip(r.options), mail.WithDialContextFunc(dialer))...)
	if err != nil {
		return nil, fmt.Errorf("mailer: relay client: %w", err)
	}
	sc, err := client.DialToSMTPClientWithContext(ctx)
	if !stop() && err == nil {
		err = ctx.Err()
	}
	if err != nil {
		if raw != nil {
			_ = raw.Close() // go-mail leaves it open when the setup fails
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("mailer: connect to %s: %w", r.addr, ctxErr)
		}
		if code := replyCode(err); code >= 500 {
			// The relay refused us, not the message (a wrong password, say):
			// the error stays temporary, so messages wait for the fix.
			return nil, fmt.Errorf("mailer: relay %s refused the connection (check the relay URL and credentials): %w", r.addr, err)
		}
		return nil, fmt.Errorf("mailer: connect to %s: %w", r.addr, err)
	}
	c := &conn{id: r.nextID.Add(1), smtp: sc, raw: raw}
	if ok, _ := sc.Extension("PIPELINING"); ok {
		c.pipelining = true
		// What go-mail's Mail adds (we set no DSN).
		if ok, _ := sc.Extension("8BITMIME"); ok {
			c.mailParams += " BODY=8BITMIME"
		}
		if ok, _ := sc.Extension("SMTPUTF8"); ok {
			c.mailParams += " SMTPUTF8"
		}
	}
	r.log.Debug("connected", "conn", c.id)
	return c, nil
}
