package main

import (
	"errors"
	"net"
	"strings"
	"sync"

	"golang.org/x/net/dns/dnsmessage"
)

// dnsServer answers the daemon's SPF and DMARC lookups on 127.0.0.1
// (UDP), so that the default sender policy, aligned, is measured with its
// real checks and without the network: the senders' domains allow mail
// from 127.0.0.1 by SPF. Every other name does not exist.
type dnsServer struct {
	pc  net.PacketConn
	txt map[string][]string // lower-case name with the final dot → records
	wg  sync.WaitGroup
}

// senderDomainRecords are the TXT records of a sending domain whose mail
// comes from 127.0.0.1.
func senderDomainRecords(domains ...string) map[string][]string {
	txt := map[string][]string{}
	for _, d := range domains {
		txt[d] = []string{"v=spf1 ip4:127.0.0.1 -all"}
		txt["_dmarc."+d] = []string{"v=DMARC1; p=none"}
	}
	return txt
}

func startDNS(txt map[string][]string) (*dnsServer, error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &dnsServer{pc: pc, txt: map[string][]string{}}
	for name, recs := range txt {
		s.txt[strings.ToLower(strings.TrimSuffix(name, "."))+"."] = recs
	}
	s.wg.Go(s.serve)
	return s, nil
}

// Addr is the host:port to give the daemon's --dns.
func (s *dnsServer) Addr() string { return s.pc.LocalAddr().String() }

// Close stops the server and waits for it.
func (s *dnsServer) Close() error {
	err := s.pc.Close()
	s.wg.Wait()
	return err
}

func (s *dnsServer) serve() {
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
func (s *dnsServer) answer(query []byte) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, err
	}
	q, err := p.Question()
	if err != nil {
		return nil, err
	}
	name := strings.ToLower(q.Name.String())
	recs, known := s.txt[name]
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
				dnsmessage.TXTResource{TXT: []string{r}})
			if err != nil {
				return nil, err
			}
		}
	}
	return b.Finish()
}
