package dnstest

import (
	"context"
	"errors"
	"net"
	"sync"

	"golang.org/x/net/dns/dnsmessage"
)

// Server answers DNS queries over UDP on 127.0.0.1 from a Resolver's TXT
// records, for a program run as a child (the bench's daemon, given
// --dns Addr()): every other name does not exist.
type Server struct {
	r  *Resolver
	pc net.PacketConn
	wg sync.WaitGroup
}

// Serve starts a server for r.
func Serve(r *Resolver) (*Server, error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{r: r, pc: pc}
	s.wg.Go(s.serve)
	return s, nil
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.pc.LocalAddr().String() }

// Close stops the server and waits for it.
func (s *Server) Close() error {
	err := s.pc.Close()
	s.wg.Wait()
	return err
}

func (s *Server) serve() {
	buf := make([]byte, 1500)
	for {
		n, addr, err := s.pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if out, err := s.answer(buf[:n]); err == nil {
			_, _ = s.pc.WriteTo(out, addr)
		}
	}
}

// answer builds the response to one query.
func (s *Server) answer(query []byte) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, err
	}
	q, err := p.Question()
	if err != nil {
		return nil, err
	}
	recs, err := s.r.LookupTXT(context.Background(), q.Name.String())
	known := err == nil
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired, RecursionAvailable: true}
	if !known {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	if known && q.Type == dnsmessage.TypeTXT {
		for _, r := range recs {
			err := b.TXTResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 300},
				dnsmessage.TXTResource{TXT: chunks(r)})
			if err != nil {
				return nil, err
			}
		}
	}
	return b.Finish()
}

// chunks splits a TXT record into the character-strings of at most 255
// bytes it travels as (RFC 1035 3.3.14): a DKIM key of 2048 bits is longer.
func chunks(r string) []string {
	var out []string
	for len(r) > 255 {
		out = append(out, r[:255])
		r = r[255:]
	}
	return append(out, r)
}
