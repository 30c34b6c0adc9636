package smtp

import (
	"github.com/smtp-exporter/smtp_exporter/probes"

	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"slices"
	"strings"
	"time"

	"github.com/go-kit/log"
)

// Run probes target ("host:port"; the port defaults to 25, 465 for implicit
// TLS, 24 for LMTP) with module m and returns what it learned. It never
// returns nil, never panics on server input and returns within m.Timeout
// (or ctx's deadline, if sooner) plus quitGrace, in which a probe that ran
// out of time or was cancelled still ends the session with QUIT when the
// stream allows. logger may be nil.
func Probe(ctx context.Context, target string, m probes.Module, logger log.Logger) *probes.Result {
	// m is a copy, but Auth still points at the caller's settings, shared
	// by every target probed with this module, and SetDefaults writes them.
	if m.SMTP.Auth != nil {
		auth := *m.SMTP.Auth
		m.SMTP.Auth = &auth
	}
	m.SetDefaults()
	ctx, cancel := context.WithTimeout(ctx, m.Timeout)
	defer cancel()
	s := &session{
		m: &m,
		res: &probes.Result{Target: target, Start: time.Now(), Success: true, Reason: probes.ReasonOK,
			SMTP: &probes.SMTPFacts{NegativeTest: len(m.SMTP.ExpectCodes) > 0}},
	}
	s.debug = probes.DebugLogger(logger)
	s.deadline, _ = ctx.Deadline()
	s.ctx = ctx
	s.addSecrets()
	s.run(ctx, target)
	s.redactResult()
	// A cancelled probe fails as timeout, the taxonomy having no other
	// reason, but its error says so: callers must be able to tell a scrape
	// aborted or a shutdown from a slow server.
	if r := s.res; !r.Success && r.Reason == probes.ReasonTimeout &&
		errors.Is(ctx.Err(), context.Canceled) && !errors.Is(r.Err, context.Canceled) {
		r.Err = fmt.Errorf("%w: %w", context.Canceled, r.Err)
	}
	s.res.Duration = time.Since(s.res.Start)
	return s.res
}

func (s *session) run(ctx context.Context, target string) {
	phases := s.m.Phases()
	s.res.Phases = make([]*probes.PhaseResult, 0, len(phases))
	// Room for the lines before the greeting; the dialog's are made room
	// for once it came (banner).
	s.res.Transcript = make([]probes.TranscriptLine, 0, 4)
	// A malformed target or an unusable tls_config is the exporter's own
	// configuration problem, not the server's: reason other.
	host, port, err := probes.SplitTarget(target, s.m)
	if err != nil {
		s.phase(probes.PhaseResolve, func(*probes.PhaseResult) error { return &stepError{probes.ReasonOther, err.Error()} })
		return
	}
	s.host = host
	if tlsPhase := s.tlsPhase(); tlsPhase != "" {
		// Built before connecting (it reads the CA file when that
		// changed), so that the time it takes is not counted as the
		// server's banner latency.
		s.tlsConfig, err = s.clientTLSConfig()
		if err != nil {
			s.phase(tlsPhase, func(*probes.PhaseResult) error {
				return &stepError{probes.ReasonOther, "TLS configuration: " + err.Error()}
			})
			return
		}
	}
	var ip net.IP
	if !s.phase(probes.PhaseResolve, func(*probes.PhaseResult) error {
		ip, err = s.resolve(ctx, host)
		return err
	}) {
		return
	}
	if !s.phase(probes.PhaseConnect, func(*probes.PhaseResult) error { return s.connect(ctx, ip, port) }) {
		return
	}
	// From here the connection exists: always close it, and QUIT first
	// when the dialog is still in step.
	// One absolute deadline bounds every read and write, TLS included
	// (tls.Conn uses the raw connection's). Cancellation interrupts the
	// read in flight and starts quitGrace; connDeadline keeps a late
	// cancellation from undoing the grace, and stop() keeps one from
	// firing at all once the dialog is over.
	s.dl = &connDeadline{conn: s.conn}
	_ = s.conn.SetDeadline(s.deadline)
	stop := context.AfterFunc(ctx, s.dl.cancel)
	defer func() {
		stop()
		s.quit()
		s.conn.Close()
	}()
	// The module's own list of phases decides what runs: resolve and
	// connect are done by now, and quit is the deferred farewell above.
	for _, p := range phases {
		fn := s.step(p)
		if fn == nil {
			continue
		}
		if !s.phase(p, fn) || s.stopped {
			return
		}
	}
}

// step is the dialog's step for phase p, nil for the phases run doesn't
// run in the loop.
func (s *session) step(p probes.Phase) func(*probes.PhaseResult) error {
	switch p {
	case probes.PhaseTLS:
		return func(*probes.PhaseResult) error { return s.handshake() }
	case probes.PhaseBanner:
		return s.banner
	case probes.PhaseEHLO, probes.PhaseLHLO:
		return s.hello
	case probes.PhaseSTARTTLS:
		return s.starttls
	case probes.PhaseAuth:
		return s.auth
	case probes.PhaseMail:
		return s.mail
	case probes.PhaseRcpt:
		return s.rcpt
	case probes.PhaseData:
		return s.data
	}
	return nil
}

// tlsPhase is the phase in which the TLS handshake happens, "" for none.
func (s *session) tlsPhase() probes.Phase {
	switch s.m.SMTP.TLS {
	case probes.TLSImplicit:
		return probes.PhaseTLS
	case probes.TLSStartTLS:
		return probes.PhaseSTARTTLS
	}
	return ""
}

// resolve returns one address of host in the preferred family, falling back
// to the other one when allowed. IP literals skip DNS.
func (s *session) resolve(ctx context.Context, host string) (net.IP, error) {
	if s.m.IPProtocol == probes.IPProtocolBoth {
		return nil, &stepError{probes.ReasonOther, "ip_protocol both is for scheduled targets, which run once per family (NAME/ip4, NAME/ip6); a single probe needs a module with ip_protocol ip4 or ip6"}
	}
	if ip := net.ParseIP(host); ip != nil {
		return ip, nil
	}
	addrs, err := probes.LookupIPAddr(ctx, host)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	ip, fellBack := pickAddress(addrs, s.m.IPProtocol == "ip4", *s.m.IPProtocolFallback)
	if ip == nil {
		return nil, &stepError{probes.ReasonDNS, fmt.Sprintf("%s has no %s address", host, s.m.IPProtocol)}
	}
	if fellBack {
		s.note("resolved %s to %s (no %s address, fell back)", host, ip, s.m.IPProtocol)
	} else {
		s.note("resolved %s to %s", host, ip)
	}
	return ip, nil
}

// pickAddress takes the first address of the preferred family, else, when
// fallback allows, the first of the other one.
func pickAddress(addrs []net.IPAddr, want4, fallback bool) (ip net.IP, fellBack bool) {
	var other net.IP
	for _, a := range addrs {
		if (a.IP.To4() != nil) == want4 {
			return a.IP, false
		}
		if other == nil {
			other = a.IP
		}
	}
	if other != nil && fallback {
		return other, true
	}
	return nil, false
}

func (s *session) connect(ctx context.Context, ip net.IP, port string) error {
	addr := net.JoinHostPort(ip.String(), port)
	s.connectAddr = addr
	conn, err := s.dial(ctx, addr)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return err
		}
		return &stepError{probes.ReasonConnect, probes.ConnectError(addr, err)}
	}
	s.res.RemoteAddr = addr
	s.setConn(conn)
	s.pending = 1 // the greeting
	return nil
}

// clientTLSConfig builds the handshake config from the module's tls_config
// (its files read only when they changed). Verification is switched off in
// the handshake and done by probes.TLSFacts, so the facts of a bad
// certificate are still recorded.
func (s *session) clientTLSConfig() (*tls.Config, error) {
	cfg, err := probes.ClientTLSConfig(&s.m.SMTP.TLSConfig)
	if err != nil {
		return nil, err
	}
	if cfg.ServerName == "" && net.ParseIP(s.host) == nil {
		cfg.ServerName = s.host
	}
	cfg.InsecureSkipVerify = true
	return cfg, nil
}

// handshake runs the TLS client handshake on the current connection, then
// records and verifies the certificate.
func (s *session) handshake() error {
	cfg := s.tlsConfig
	conn, done := probes.LimitHandshake(s.ctx, s.conn)
	tc := tls.Client(conn, cfg)
	err := tc.Handshake()
	done()
	if err != nil {
		s.to(broken)
		switch s.reasonOf(err) {
		case probes.ReasonTimeout:
			return s.waitedFor("TLS handshake did not finish", err)
		case probes.ReasonConnectionLost:
			return err
		}
		return &stepError{probes.ReasonTLSHandshake, "TLS handshake failed: " + err.Error()}
	}
	s.setConn(tc)
	s.tlsOn = true
	if s.state == tlsHandshake {
		// After STARTTLS; implicit TLS's greeting is still due.
		s.to(ready)
	}
	cs := tc.ConnectionState()
	name := cfg.ServerName
	if name == "" {
		name = s.host
	}
	info := probes.TLSFacts(cs, cfg.RootCAs, name)
	s.res.TLS = info
	s.note("TLS handshake done: %s, %s, verified=%t", info.Version, info.Cipher, info.Verified)
	if info.Verified || s.m.SMTP.TLSConfig.InsecureSkipVerify {
		return nil
	}
	return &probes.TLSVerifyError{Reason: probes.VerifyReason(info, time.Now()), Err: info.VerifyError}
}

func (s *session) banner(pr *probes.PhaseResult) error {
	s.to(ready) // once the greeting is read
	rep, err := s.read(pr)
	if err != nil {
		return err
	}
	// A STARTTLS dialog has about 30 lines, two EHLO replies of ten
	// lines each most of them.
	s.res.Transcript = slices.Grow(s.res.Transcript, 32)
	return s.judge(probes.PhaseBanner, "greeting", rep, 220)
}

// ehloName is the configured name, else the machine's FQDN, else the
// address literal of our end of the connection.
func (s *session) ehloName() string {
	if s.m.SMTP.EHLO != "" {
		return s.m.SMTP.EHLO
	}
	if name := probes.DefaultEHLOName(); name != "" {
		return name
	}
	if a, ok := s.conn.LocalAddr().(*net.TCPAddr); ok {
		if a.IP.To4() != nil {
			return "[" + a.IP.String() + "]"
		}
		return "[IPv6:" + a.IP.String() + "]"
	}
	return "[127.0.0.1]"
}

func (s *session) hello(pr *probes.PhaseResult) error {
	if err := s.sayHello(pr, pr.Phase); err != nil {
		return err
	}
	_, s.res.SMTP.STARTTLSOffered = s.ext["STARTTLS"]
	return nil
}

// sayHello sends EHLO (LHLO for LMTP) and records the extensions; an SMTP
// server that does not know EHLO (500/502) gets HELO instead. The replies
// go into pr but are judged as phase p's: the EHLO after STARTTLS belongs
// to the starttls phase but is an EHLO all the same.
func (s *session) sayHello(pr *probes.PhaseResult, p probes.Phase) error {
	cmd := "EHLO"
	if s.m.Prober == probes.ProberLMTP {
		cmd = "LHLO"
	}
	name := s.ehloName()
	if err := s.cmd(cmd+" "+name, ""); err != nil {
		return err
	}
	rep, err := s.read(pr)
	if err != nil {
		return err
	}
	if p == s.m.HelloPhase() {
		s.res.SMTP.HelloAnswered = true
	}
	if cmd == "EHLO" && (rep.Code == 500 || rep.Code == 502) {
		if _, set := s.m.SMTP.ExpectCodes[p]; !set {
			s.note("EHLO refused, falling back to HELO")
			s.res.SMTP.HELOFallback = true
			s.ext = map[string]string{}
			s.res.SMTP.Extensions = s.ext
			if err := s.cmd("HELO "+name, ""); err != nil {
				return err
			}
			rep, err := s.read(pr)
			if err != nil {
				return err
			}
			return s.judge(p, "HELO", rep, 250)
		}
	}
	if err := s.judge(p, cmd, rep, 250); err != nil || s.stopped {
		return err
	}
	s.ext = parseExtensions(rep.Lines)
	s.res.SMTP.Extensions = s.ext
	return nil
}

// parseExtensions reads EHLO reply lines after the greeting line: keyword
// and parameters, keywords upper-cased. The old "AUTH=" form some servers
// still send is folded into AUTH.
func parseExtensions(lines []string) map[string]string {
	ext := map[string]string{}
	if len(lines) < 2 {
		return ext
	}
	for _, l := range lines[1:] {
		kw, params, _ := strings.Cut(strings.TrimSpace(l), " ")
		kw = strings.ToUpper(kw)
		if strings.HasPrefix(kw, "AUTH=") {
			params = strings.TrimSpace(kw[len("AUTH="):] + " " + params)
			kw = "AUTH"
		}
		if kw == "AUTH" {
			// Servers that send both forms list mechanisms on each.
			params = mergeFields(ext[kw], params)
		}
		if kw != "" {
			ext[kw] = strings.TrimSpace(params)
		}
	}
	return ext
}

func (s *session) starttls(pr *probes.PhaseResult) error {
	if _, ok := s.ext["STARTTLS"]; !ok {
		return &stepError{probes.ReasonSTARTTLSUnavailable, "server does not offer STARTTLS"}
	}
	if err := s.cmd("STARTTLS", ""); err != nil {
		return err
	}
	rep, err := s.read(pr)
	if err != nil {
		return err
	}
	if err := s.judge(probes.PhaseSTARTTLS, "STARTTLS", rep, 220); err != nil {
		// A 220 left the server waiting for a handshake (tlsHandshake).
		var re *replyError
		if errors.As(err, &re) && rep.Code != 220 && rep.Code != 421 && re.reason != probes.ReasonUnexpectedReply {
			re.reason = probes.ReasonSTARTTLSUnavailable
		}
		return err
	}
	if s.stopped {
		return nil
	}
	// Anything the server sent after 220 and before the handshake is an
	// injection attempt (CVE-2011-0411 style): refuse it.
	if s.br.Buffered() > 0 {
		s.to(broken)
		return &ProtocolError{Msg: "server sent data after 220 to STARTTLS, before the TLS handshake"}
	}
	if err := s.handshake(); err != nil {
		return err
	}
	// RFC 3207 §4.2: forget what was learned before TLS and greet again.
	return s.sayHello(pr, s.m.HelloPhase())
}

func (s *session) mail(pr *probes.PhaseResult) error {
	line := "MAIL FROM:<" + s.m.SMTP.MailFrom + ">"
	if _, ok := s.ext["SIZE"]; ok && s.m.SMTP.Send {
		// RFC 1870: a message too large is refused here, as real clients
		// see it, not after DATA. The size is as RFC 1870 counts it: CRLFs
		// in, dot-stuffing and the final dot out.
		line += fmt.Sprintf(" SIZE=%d", len(s.message()))
	}
	if _, ok := s.ext["SMTPUTF8"]; ok && !isASCII(s.m.SMTP.MailFrom+strings.Join(s.m.SMTP.RcptTo, "")) {
		line += " SMTPUTF8"
	}
	_, err := s.exchange(pr, line, 250)
	return err
}

// rcpt sends every recipient. The phase fails on the first refusal unless
// expect_codes names it; when every recipient got an expected refusal the
// negative test has passed and the dialog ends.
func (s *session) rcpt(pr *probes.PhaseResult) error {
	accepted := 0
	for _, to := range s.m.SMTP.RcptTo {
		s.stopped = false
		rep, err := s.exchange(pr, "RCPT TO:<"+to+">", 250, 251)
		if err != nil {
			return err
		}
		if rep.Code == 250 || rep.Code == 251 {
			accepted++
		}
	}
	s.stopped = accepted == 0
	s.rcptAccepted = accepted
	return nil
}

// data sends DATA and the generated message. SMTP answers once; LMTP once
// per accepted recipient (RFC 2033 §4.2), and each answer counts. Only the
// final replies decide the phase: 354 merely lets the message go.
func (s *session) data(pr *probes.PhaseResult) error {
	if err := s.cmd("DATA", ""); err != nil {
		return err
	}
	rep, err := s.read(pr)
	if err != nil {
		return err
	}
	if rep.Code != 354 {
		return s.judge(probes.PhaseData, "DATA", rep, 354)
	}
	msg := s.message()
	s.res.SMTP.MessageID = s.msgID
	s.res.SMTP.ProbeToken = s.token
	s.record(probes.DirSend, fmt.Sprintf("<message: %d bytes, Message-ID %s>", len(msg), s.res.SMTP.MessageID))
	dw := textproto.NewWriter(s.writer()).DotWriter()
	if _, err := dw.Write(msg); err != nil {
		return err
	}
	if err := dw.Close(); err != nil {
		return err
	}
	s.to(inTransaction) // out of sendingMessage: the dot is sent
	s.record(probes.DirSend, ".")
	replies := 1
	if s.m.Prober == probes.ProberLMTP {
		replies = s.rcptAccepted
	}
	s.pending, s.pendingCmd = replies, "."
	// Every reply is read before the verdict, the first failure deciding
	// it: one left unread would be taken for the answer to the next
	// command.
	var verdict error
	for i := 0; i < replies; i++ {
		rep, err := s.readFinal(pr, i, replies)
		if err != nil {
			return err
		}
		if err := s.judge(probes.PhaseData, "end of DATA", rep, 250); err != nil {
			if verdict == nil {
				verdict = err
			}
			continue
		}
		if q := queueID(rep.Text()); q != "" && s.res.SMTP.QueueID == "" {
			s.res.SMTP.QueueID = q
		}
	}
	if verdict != nil {
		return verdict
	}
	s.to(ready)
	return nil
}

// readFinal reads the i-th of n replies to the message. After the first,
// an LMTP server has at most lmtpReplyWait for each. One that does not
// send it by then owes the rest, which are given up on: the dialog fails
// as protocol and the session ends under the grace, QUIT going out without
// waiting for them (a late one may be read as QUIT's reply; that does no
// harm).
func (s *session) readFinal(pr *probes.PhaseResult, i, n int) (probes.Reply, error) {
	until := time.Now().Add(lmtpReplyWait)
	if i == 0 || !until.Before(s.deadline) {
		return s.read(pr)
	}
	s.dl.setRead(until)
	defer s.dl.setRead(s.deadline)
	rep, err := s.read(pr)
	var ne net.Error
	if err == nil || !errors.As(err, &ne) || !ne.Timeout() || s.ctx.Err() != nil {
		return rep, err
	}
	s.owed, s.pending = s.pending, 0
	if s.partial != "" {
		// The server stopped mid-line: QUIT's reply would finish it.
		s.to(broken)
	}
	return rep, &ProtocolError{Msg: fmt.Sprintf("LMTP server sent %d of %d replies after DATA", i, n)}
}

// message returns the RFC 5322 test message, built once, so that the one
// MAIL measured is the one sent. It names itself as automated (RFC 3834
// Auto-Submitted) so that well-behaved systems never auto-reply. The
// module's message settings may override some headers, add others and
// replace the body; the token header, Message-ID and the closing "Probe:"
// line stay, the last so that a plain-text bounce quoting the body still
// names the probe.
func (s *session) message() []byte {
	if s.msg != nil {
		return s.msg
	}
	c := &s.m.SMTP
	domain := c.MailFrom[strings.LastIndexByte(c.MailFrom, '@')+1:]
	if domain == "" {
		domain = "smtp-exporter.invalid"
	}
	id := c.TokenPrefix + newProbeID()
	s.token = id
	s.msgID = "<" + id + "@" + domain + ">"
	var b strings.Builder
	for _, h := range c.Message.ApplyHeaders([]probes.Header{
		{Name: "Date", Value: time.Now().Format(time.RFC1123Z)},
		{Name: "From", Value: "<" + c.MailFrom + ">"},
		{Name: "To", Value: "<" + strings.Join(c.RcptTo, ">, <") + ">"},
		{Name: "Message-ID", Value: s.msgID},
		{Name: "Subject", Value: fmt.Sprintf("smtp_exporter probe %s of %s", id, s.res.Target)},
		{Name: "Auto-Submitted", Value: "auto-generated"},
		{Name: "X-SMTP-Exporter-Probe", Value: id},
		{Name: "MIME-Version", Value: "1.0"},
		{Name: "Content-Type", Value: "text/plain; charset=us-ascii"},
	}) {
		b.WriteString(h.Name + ": " + h.Value + "\r\n")
	}
	b.WriteString("\r\n")
	if body, ok := c.Message.CustomBody(); ok {
		b.WriteString(body)
	} else {
		b.WriteString("This is a synthetic test message sent by smtp_exporter to check that\r\n")
		b.WriteString("this mail system accepts mail. It needs no action and can be deleted.\r\n")
		b.WriteString(".\r\n") // a lone dot in the body proves the dot-stuffing end to end
	}
	b.WriteString("Probe: " + id + "\r\n")
	s.msg = []byte(b.String())
	return s.msg
}

func newProbeID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// mergeFields appends b's words to a's, skipping words a already has.
func mergeFields(a, b string) string {
	words := strings.Fields(a)
	for _, w := range strings.Fields(b) {
		if !slices.Contains(words, strings.ToUpper(w)) {
			words = append(words, strings.ToUpper(w))
		}
	}
	return strings.Join(words, " ")
}
