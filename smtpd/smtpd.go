// Package smtpd is invited's inbound SMTP listener. It accepts mail for
// its own mailboxes at the served domain only, and answers 250 only after
// the queue has the message on disk.
package smtpd

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/invited/invited/internal/membudget"
)

// Envelope is what the SMTP conversation said about a message.
type Envelope struct {
	Remote   string
	HELO     string
	MailFrom string
	RcptTo   []string
	TLS      bool
	// SPF is the result of Config.CheckSPF for the connecting IP and MAIL
	// FROM ("" when not checked), SPFDomain the domain it was for.
	SPF, SPFDomain string
}

// Queue stores received messages. Accept returns only once the message is
// durable; data is the listener's, to be used again once Accept returns,
// so Accept must not keep it. Busy reports that the queue is past its
// high-water mark.
type Queue interface {
	Accept(ctx context.Context, env Envelope, data []byte) (id string, err error)
	Busy() bool
}

// Config configures a Server. Zero fields take the defaults noted.
type Config struct {
	Domain string // the served domain; mail for any other is refused
	// Hostname is announced in the greeting (default Domain).
	Hostname string
	// Mailboxes are the local parts accepted as they are; Tagged are local
	// parts that also accept "+TAG" (rsvp+TAG@domain).
	Mailboxes []string
	Tagged    []string
	// MaxMessageBytes (default 10 MiB) and MaxRecipients (default 10).
	MaxMessageBytes int64
	MaxRecipients   int
	// ReadTimeout and WriteTimeout per command (default 2 minutes), and
	// DataTimeout for the whole DATA transfer (default 10 minutes).
	ReadTimeout, WriteTimeout, DataTimeout time.Duration
	// AcceptTimeout bounds the wait for the queue to commit (default 30s).
	AcceptTimeout time.Duration
	// MaxConns bounds the connections open at once (default 200),
	// MaxConnsPerIP those from one address (default 20),
	// MaxMessagesPerConn the messages on one connection (default 100),
	// MaxHeaderBytes a message's header (default 64 KiB).
	MaxConns           int
	MaxConnsPerIP      int
	MaxMessagesPerConn int
	MaxHeaderBytes     int
	// TLS, when set, enables STARTTLS.
	TLS *tls.Config
	// Memory, when set, is taken from by a message once it passes
	// membudget.Small bytes, for the rest of it (see messageReader). One
	// that waits MemoryWait (default AcceptTimeout) for memory is answered
	// 451, and its sender retries; a client that, holding some, falls
	// MemoryStall (default 30s) behind 32 KiB a second has its connection
	// closed.
	Memory                  *membudget.Budget
	MemoryWait, MemoryStall time.Duration
	// CheckSPF, when set, is asked at DATA whether ip may send for
	// mailFrom (HELO helo), within AcceptTimeout of its own; its answer
	// (senderauth.Checker.SPFAtData) is stored with the envelope.
	CheckSPF func(ctx context.Context, ip net.IP, helo, mailFrom string) (result, domain string)
}

// Server is the SMTP listener.
type Server struct {
	cfg   Config
	q     Queue
	log   *slog.Logger
	smtp  *smtp.Server
	conns atomic.Uint64
	open  openConns
}

// New returns a Server that hands messages to q.
func New(cfg Config, q Queue, log *slog.Logger) (*Server, error) {
	if cfg.Domain == "" {
		return nil, errors.New("smtpd: no domain")
	}
	cfg.Domain = strings.ToLower(cfg.Domain)
	if cfg.Hostname == "" {
		cfg.Hostname = cfg.Domain
	}
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = 10 << 20
	}
	if cfg.MaxRecipients <= 0 {
		cfg.MaxRecipients = 10
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 2 * time.Minute
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 2 * time.Minute
	}
	if cfg.DataTimeout <= 0 {
		cfg.DataTimeout = 10 * time.Minute
	}
	if cfg.AcceptTimeout <= 0 {
		cfg.AcceptTimeout = 30 * time.Second
	}
	if cfg.MemoryWait <= 0 {
		cfg.MemoryWait = cfg.AcceptTimeout
	}
	if cfg.MemoryStall <= 0 {
		cfg.MemoryStall = 30 * time.Second
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 200
	}
	if cfg.MaxConnsPerIP <= 0 {
		cfg.MaxConnsPerIP = 20
	}
	if cfg.MaxMessagesPerConn <= 0 {
		cfg.MaxMessagesPerConn = 100
	}
	if cfg.MaxHeaderBytes <= 0 {
		cfg.MaxHeaderBytes = 64 << 10
	}
	s := &Server{cfg: cfg, q: q, log: log}
	srv := smtp.NewServer(s)
	srv.Domain = cfg.Hostname
	srv.MaxMessageBytes = cfg.MaxMessageBytes
	srv.MaxRecipients = cfg.MaxRecipients
	srv.ReadTimeout = cfg.ReadTimeout
	srv.WriteTimeout = cfg.WriteTimeout
	srv.TLSConfig = cfg.TLS
	srv.EnableSMTPUTF8 = true
	srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	s.smtp = srv
	return s, nil
}

var _ smtp.Backend = (*Server)(nil)

// Serve accepts connections on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	err := s.smtp.Serve(&limitListener{Listener: ln,
		all:   connLimit{"connections", s.cfg.MaxConns, "421 4.3.2 Too many connections, try again later\r\n"},
		perIP: connLimit{"connections per address", s.cfg.MaxConnsPerIP, "421 4.7.0 Too many connections from your address, try again later\r\n"},
		log:   s.log, conns: &s.open})
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections and waits for open sessions to end
// or ctx to expire, then closes what is left: a client idling between
// messages is disconnected, and a message whose commit has not begun is
// not accepted (its sender retries; one already being committed is stored,
// and its 250 may be lost with the connection).
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.smtp.Shutdown(ctx)
	switch {
	case err == nil, errors.Is(err, smtp.ErrServerClosed):
		return nil
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		// go-smtp's Close does nothing once Shutdown has begun: close the
		// connections ourselves, which ends their sessions.
		n := s.open.closeAll()
		s.log.Warn("closed SMTP sessions still open at shutdown", "sessions", n)
		return nil
	}
	return fmt.Errorf("smtpd: shutdown: %w", err)
}

// NewSession implements smtp.Backend.
func (s *Server) NewSession(c *smtp.Conn) (smtp.Session, error) {
	id := s.conns.Add(1)
	remote := ""
	if a := c.Conn().RemoteAddr(); a != nil {
		remote = a.String()
	}
	ctx, cancel := context.WithCancel(context.Background())
	if cc, ok := c.Conn().(*countedConn); ok {
		cc.setCancel(cancel)
	}
	return &session{
		srv:    s,
		conn:   c,
		ctx:    ctx,
		cancel: cancel,
		remote: remote,
		log:    s.log.With("conn", id, "remote", remote),
	}, nil
}

// local classifies a recipient: nil if it is one of our mailboxes, else
// the SMTP error to answer.
func (s *Server) local(rcpt string) error {
	local, domain, ok := strings.Cut(strings.ToLower(rcpt), "@")
	if !ok || local == "" {
		return errBadAddress
	}
	if domain != s.cfg.Domain {
		return errRelay
	}
	for _, m := range s.cfg.Mailboxes {
		if local == m {
			return nil
		}
	}
	base, tag, tagged := strings.Cut(local, "+")
	for _, m := range s.cfg.Tagged {
		if base == m && (!tagged || validTag(tag)) {
			return nil
		}
	}
	return errNoMailbox
}

func validTag(tag string) bool {
	if tag == "" || len(tag) > 64 {
		return false
	}
	for _, r := range tag {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

type session struct {
	srv    *Server
	conn   *smtp.Conn
	ctx    context.Context
	cancel context.CancelFunc
	remote string
	log    *slog.Logger

	from     string
	size     int64 // declared in MAIL FROM (SIZE=), or 0
	rcpt     []string
	messages int

	mu      sync.Mutex
	reading context.Context    // while Data reads a message: its own
	abort   context.CancelFunc // gives it up
}

// Reset ends a transaction. With BDAT, go-smtp calls it while Data still
// reads the message the client gave up (RSET, or a chunk too large): Data
// is told to give it up as well, rather than wait on for memory it no
// longer needs. (go-smtp hands the connection's next BDAT a result
// channel of its own, and Data's late answer would land in it; the
// sooner Data ends, the less likely that is.)
func (s *session) Reset() {
	s.mu.Lock()
	if s.abort != nil {
		s.abort()
	}
	s.mu.Unlock()
	s.from, s.size, s.rcpt = "", 0, nil
}

func (s *session) Logout() error {
	s.cancel()
	return nil
}

func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	if s.messages >= s.srv.cfg.MaxMessagesPerConn {
		s.log.Warn("limit: messages per connection", "limit", s.srv.cfg.MaxMessagesPerConn)
		return errTooManyMessages
	}
	if s.srv.q.Busy() {
		s.log.Warn("inbound queue full: deferring", "from", from)
		return errBusy
	}
	s.from = from
	if opts != nil {
		s.size = opts.Size
	}
	return nil
}

func (s *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	if err := s.srv.local(to); err != nil {
		s.log.Info("recipient refused", "rcpt", to, "err", err)
		return err
	}
	to = strings.ToLower(to)
	for _, r := range s.rcpt {
		if r == to {
			return nil
		}
	}
	s.rcpt = append(s.rcpt, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	conn := s.conn.Conn()
	conn.SetReadDeadline(time.Now().Add(s.srv.cfg.DataTimeout))
	_, isTLS := s.conn.TLSConnectionState()
	env := Envelope{
		Remote:   s.remote,
		HELO:     s.conn.Hostname(),
		MailFrom: s.from,
		RcptTo:   append([]string(nil), s.rcpt...),
		TLS:      isTLS,
	}
	// Our Received header first (stamped as DATA starts), then the message
	// read straight after it: one buffer, not a second copy to prepend.
	buf := getBuffer()
	defer putBuffer(buf)
	buf.Write(s.received(env))
	trace := buf.Len()
	// With BDAT, go-smtp may reset the session while this runs: what is
	// logged is the envelope's copy.
	size := s.size
	read, abort := context.WithCancel(s.ctx)
	defer abort()
	s.mu.Lock()
	s.reading, s.abort = read, abort
	s.mu.Unlock()
	mr := &messageReader{r: r, conn: conn, b: s.srv.cfg.Memory, declared: size,
		largest: s.srv.cfg.MaxMessageBytes, wait: s.srv.cfg.MemoryWait, stall: s.srv.cfg.MemoryStall, ctx: read}
	defer mr.release()
	err := mr.readInto(buf)
	s.mu.Lock()
	if s.reading == read { // a message given up may end after the next began
		s.reading, s.abort = nil, nil // read: the client's no more to give up
	}
	s.mu.Unlock()
	if err != nil {
		var se *smtp.SMTPError
		switch {
		case errors.Is(err, errTooSlow):
			s.log.Warn("limit: a large message arriving too slowly: connection closed", "from", env.MailFrom, "read", mr.n)
		case read.Err() != nil && s.ctx.Err() == nil:
			s.log.Info("BDAT message given up (RSET, or a chunk past the size limit)", "from", env.MailFrom, "read", mr.n)
			return toSMTP(smtp.ErrDataReset)
		case errors.Is(err, errNoMemory):
			s.log.Warn("limit: memory for large messages: deferring", "from", env.MailFrom, "size", size, "read", mr.n)
		case !errors.As(err, &se) && !errors.Is(err, smtp.ErrTooLongLine) && !errors.Is(err, smtp.ErrDataReset):
			// A timeout or a broken connection in the middle of the
			// message: what is left of it must not be read as commands.
			// (ErrDataReset: the client ended BDAT chunks with RSET, and
			// go-smtp's reading is where it should be.)
			s.log.Warn("message cut short: connection closed", "from", env.MailFrom, "read", mr.n, "err", err)
			io.WriteString(conn, "421 4.4.2 Message not received in time, closing connection\r\n")
			conn.Close()
		}
		return toSMTP(err)
	}
	data := buf.Bytes()
	s.messages++
	if n := headerLen(data[trace:], s.srv.cfg.MaxHeaderBytes); n > s.srv.cfg.MaxHeaderBytes {
		s.log.Warn("limit: header size", "bytes", n, "limit", s.srv.cfg.MaxHeaderBytes)
		return errHeaderTooLarge
	}
	if check := s.srv.cfg.CheckSPF; check != nil {
		if tcp, ok := conn.RemoteAddr().(*net.TCPAddr); ok {
			// Its own time: slow DNS must not eat into the commit's.
			ctx, cancel := context.WithTimeout(s.ctx, s.srv.cfg.AcceptTimeout)
			env.SPF, env.SPFDomain = check(ctx, tcp.IP, env.HELO, env.MailFrom)
			cancel()
		}
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.srv.cfg.AcceptTimeout)
	defer cancel()
	id, err := s.srv.q.Accept(ctx, env, data)
	if err != nil {
		s.log.Error("accept", "err", err)
		return toSMTP(err)
	}
	s.log.Info("accepted", "msg_id", id, "from", s.from, "rcpt", env.RcptTo, "size", len(data))
	// go-smtp sends an SMTPError's code as it is, so a 250 can say which
	// message it was: the id to look for in the log and the admin API.
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "OK: queued as " + id}
}

// Message buffers are used again: Queue.Accept keeps no reference to
// the bytes it is given, and a fresh 8 KiB for each message, zeroed and
// collected, cost about 5% of the CPU of accepting one. Buffers a large
// message grew are left to the garbage collector.
var buffers = sync.Pool{New: func() any { return bytes.NewBuffer(make([]byte, 0, 8<<10)) }}

const maxPooledBuffer = 64 << 10

func getBuffer() *bytes.Buffer { return buffers.Get().(*bytes.Buffer) }

func putBuffer(b *bytes.Buffer) {
	if b.Cap() <= maxPooledBuffer {
		b.Reset()
		buffers.Put(b)
	}
}

// received is the trace header we prepend (RFC 5321 section 4.4).
func (s *session) received(env Envelope) []byte {
	helo := strings.Map(func(r rune) rune {
		if r < 0x21 || r > 0x7e || r == '(' || r == ')' {
			return -1
		}
		return r
	}, env.HELO)
	proto := "ESMTP"
	if env.TLS {
		proto = "ESMTPS"
	}
	return fmt.Appendf(nil, "Received: from %s (%s)\r\n\tby %s (invited) with %s;\r\n\t%s\r\n",
		helo, env.Remote, s.srv.cfg.Hostname, proto, time.Now().UTC().Format(time.RFC1123Z))
}

// headerLen is the size of data's header: up to the first empty line
// (CRLF or a bare LF), or all of it. It looks no further than limit bytes:
// past them it returns how far it looked.
func headerLen(data []byte, limit int) int {
	for i := 0; i <= limit; {
		j := bytes.IndexByte(data[i:], '\n')
		if j < 0 {
			return len(data)
		}
		i += j + 1
		if rest := data[i:]; len(rest) > 0 && rest[0] == '\n' || len(rest) > 1 && rest[0] == '\r' && rest[1] == '\n' {
			return i
		}
	}
	return limit + 1
}

var (
	errTooManyMessages = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Too many messages on one connection, reconnect to send more"}
	errHeaderTooLarge  = &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "Message header too large"}
	errBusy            = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "Too much mail queued here, try again later"}
	errNoMemory        = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 1}, Message: "Too much large mail being received here, try again later"}
	errTooSlow         = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "Message arriving too slowly, try again later"}
	errRelay           = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Relaying denied: this server only accepts mail for its own domain"}
	errNoMailbox       = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such mailbox here"}
	errBadAddress      = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 3}, Message: "Bad recipient address syntax"}
)

// toSMTP turns any error into the reply go-smtp sends: SMTP errors pass
// as they are, a line too long is 554, and everything else (timeouts, a
// store that failed) is 451, so the sender tries again and nothing is lost.
func toSMTP(err error) error {
	var se *smtp.SMTPError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &se):
		return se
	case errors.Is(err, smtp.ErrTooLongLine):
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "Line too long"}
	}
	return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Could not store the message, try again later"}
}

// limitListener closes, with a 421, connections past max open on the
// server or perIP open from one address, and records the others in conns.
type limitListener struct {
	net.Listener
	all, perIP connLimit
	log        *slog.Logger
	conns      *openConns
}

// openConns is the connections open on a Server's listeners, and how many
// of them each address has.
type openConns struct {
	mu    sync.Mutex
	conns map[*countedConn]struct{}
	perIP map[string]int
}

// connLimit is a limit on open connections, and what a connection past
// it is told.
type connLimit struct {
	name  string
	n     int
	reply string
}

// add records c, from ip, unless all.n are open already, or perIP.n from
// ip; it then returns the limit c is past.
func (o *openConns) add(c net.Conn, ip string, all, perIP *connLimit) (*countedConn, *connLimit) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.conns) >= all.n {
		return nil, all
	}
	if o.perIP[ip] >= perIP.n {
		return nil, perIP
	}
	if o.conns == nil {
		o.conns, o.perIP = map[*countedConn]struct{}{}, map[string]int{}
	}
	cc := &countedConn{Conn: &replyConn{Conn: c}, open: o, ip: ip}
	o.conns[cc] = struct{}{}
	o.perIP[ip]++
	return cc, nil
}

func (o *openConns) remove(c *countedConn) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.conns, c)
	if o.perIP[c.ip]--; o.perIP[c.ip] <= 0 {
		delete(o.perIP, c.ip)
	}
}

// closeAll ends every open session and closes its connection, and says
// how many there were. Cancelling the session first means a message whose
// commit has not begun is not stored: its sender, who will get no 250,
// sends it again, and it is not then stored twice. The connections close
// side by side, each taking up to closeFlushTimeout for what it holds.
func (o *openConns) closeAll() int {
	o.mu.Lock()
	conns := make([]*countedConn, 0, len(o.conns))
	for c := range o.conns {
		conns = append(conns, c)
	}
	o.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range conns {
		c.cancelSession()
		wg.Go(func() { c.Close() })
	}
	wg.Wait()
	return len(conns)
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := remoteIP(c)
		cc, past := l.conns.add(c, ip, &l.all, &l.perIP)
		if cc != nil {
			return cc, nil
		}
		l.log.Warn("limit: "+past.name, "remote", ip, "limit", past.n)
		c.SetWriteDeadline(time.Now().Add(time.Second))
		io.WriteString(c, past.reply)
		c.Close()
	}
}

func remoteIP(c net.Conn) string {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	return c.RemoteAddr().String()
}

// countedConn leaves the open connections when closed.
type countedConn struct {
	net.Conn
	open *openConns
	ip   string
	once sync.Once

	mu     sync.Mutex
	cancel context.CancelFunc // the session's, once it has one
}

func (c *countedConn) setCancel(cancel context.CancelFunc) {
	c.mu.Lock()
	c.cancel = cancel
	c.mu.Unlock()
}

func (c *countedConn) cancelSession() {
	c.mu.Lock()
	cancel := c.cancel
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.open.remove(c) })
	return c.Conn.Close()
}
