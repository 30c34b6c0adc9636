package probes

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/prometheus/common/config"
)

// Defaults for module settings; README.md documents each of them.
const (
	DefaultTimeout         = 15 * time.Second
	DefaultMinSendInterval = 5 * time.Minute
	DefaultIPProtocol      = IPProtocol4
	DefaultAuthMechanism   = "PLAIN"
	// DefaultPollInterval and DefaultDeliveryTimeout are the delivery
	// prober's: how often a mailbox without IDLE is searched, and how long
	// a message may take before it counts as not delivered.
	DefaultPollInterval    = 10 * time.Second
	DefaultDeliveryTimeout = 5 * time.Minute
)

// TLS modes.
const (
	TLSNone     = "none"
	TLSStartTLS = "starttls"
	TLSImplicit = "implicit"
)

// Address families of ip_protocol. IPProtocolBoth is for scheduled
// targets only: the loader expands each target of such a module into one
// run per family (collector/config), and a probe given it directly refuses.
const (
	IPProtocol4    = "ip4"
	IPProtocol6    = "ip6"
	IPProtocolBoth = "both"
)

// PROXY protocol versions of smtp.proxy_protocol.
const (
	ProxyProtocolV1 = "v1"
	ProxyProtocolV2 = "v2"
)

// Probers.
const (
	ProberSMTP     = "smtp"
	ProberLMTP     = "lmtp"
	ProberDelivery = "delivery"
)

// Probers lists every prober name a module may have.
var Probers = []string{ProberSMTP, ProberLMTP, ProberDelivery, ProberDomain}

// Module is one probe configuration: what dialog to run against a target.
// Zero values mean "use the default"; call SetDefaults then Validate after
// decoding.
type Module struct {
	Prober  string        `yaml:"prober,omitempty" json:"prober,omitempty"`
	Timeout time.Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// IPProtocol is the preferred address family; IPProtocolFallback (default
	// true) allows the other one when the name has no address of this one.
	IPProtocol         string `yaml:"ip_protocol,omitempty" json:"ip_protocol,omitempty"`
	IPProtocolFallback *bool  `yaml:"ip_protocol_fallback,omitempty" json:"ip_protocol_fallback,omitempty"`
	// SourceIPAddress is the local address the probe connects from (SMTP,
	// the delivery prober's IMAP, the domain prober's MX sessions): a
	// receiver judges reputation per sending address.
	SourceIPAddress string     `yaml:"source_ip_address,omitempty" json:"source_ip_address,omitempty"`
	SMTP            SMTPModule `yaml:"smtp,omitempty" json:"smtp"`
	// Delivery is the receive leg of prober delivery; SMTP is its send leg.
	Delivery DeliveryModule `yaml:"delivery,omitempty" json:"delivery"`
	// Domain is the domain prober's settings; SMTP holds its MX sessions'.
	Domain DomainModule `yaml:"domain,omitempty" json:"domain"`
}

// DeliveryModule holds the delivery prober's receive leg: the mailbox the
// probe message should reach and what it must look like there.
type DeliveryModule struct {
	IMAP IMAPModule `yaml:"imap,omitempty" json:"imap"`
	// BounceIMAP is the sender's mailbox, where bounces about the probe
	// message come back; nil means IMAP's INBOX.
	BounceIMAP *IMAPModule `yaml:"bounce_imap,omitempty" json:"bounce_imap,omitempty"`
	// Folders are watched besides INBOX and the \Junk folders.
	Folders         []string      `yaml:"folders,omitempty" json:"folders,omitempty"`
	PollInterval    time.Duration `yaml:"poll_interval,omitempty" json:"poll_interval,omitempty"`
	DeliveryTimeout time.Duration `yaml:"delivery_timeout,omitempty" json:"delivery_timeout,omitempty"`
	// AuthservID is the authserv-id of the receiver's verifier: only its
	// Authentication-Results headers are trusted (RFC 8601 §7.1).
	AuthservID string `yaml:"authserv_id,omitempty" json:"authserv_id,omitempty"`
	// AuthresWithoutID trusts the Authentication-Results header that
	// carries no authserv-id at all, as Microsoft 365 writes it. With
	// neither this nor AuthservID, no header is trusted and the verdicts
	// are unknown: an unset key must not silently read as "none".
	AuthresWithoutID bool `yaml:"authres_without_id,omitempty" json:"authres_without_id,omitempty"`
	// RequireInbox fails a run whose message lands in junk (spam_folder).
	RequireInbox bool `yaml:"require_inbox,omitempty" json:"require_inbox,omitempty"`
	// RequireAuth lists the methods (spf, dkim, dmarc) that must pass.
	RequireAuth []string `yaml:"require_auth,omitempty" json:"require_auth,omitempty"`
}

// IMAPModule says how to reach and log in to the receiving mailbox.
type IMAPModule struct {
	Address           string           `yaml:"address,omitempty" json:"address,omitempty"`
	TLS               string           `yaml:"tls,omitempty" json:"tls,omitempty"`
	TLSConfig         config.TLSConfig `yaml:"tls_config,omitempty" json:"tls_config"`
	Auth              *AuthConfig      `yaml:"auth,omitempty" json:"auth,omitempty"`
	AllowInsecureAuth bool             `yaml:"allow_insecure_auth,omitempty" json:"allow_insecure_auth,omitempty"`
}

// IMAPAuthMechanisms are the mechanisms the receive leg can log in with.
var IMAPAuthMechanisms = []string{"PLAIN", "LOGIN", "XOAUTH2"}

// AuthMethods are the methods require_auth may name.
var AuthMethods = []string{"spf", "dkim", "dmarc"}

// SMTPModule holds the dialog settings shared by the smtp and lmtp probers.
type SMTPModule struct {
	TLS string `yaml:"tls,omitempty" json:"tls,omitempty"`
	// EHLO is the name the probe greets with; empty means the machine's
	// fully qualified name, else the connection's address literal.
	EHLO      string           `yaml:"ehlo,omitempty" json:"ehlo,omitempty"`
	TLSConfig config.TLSConfig `yaml:"tls_config,omitempty" json:"tls_config"`
	Auth      *AuthConfig      `yaml:"auth,omitempty" json:"auth,omitempty"`
	// AllowInsecureAuth permits AUTH over a connection without TLS, which
	// exposes the credentials to anyone on the path.
	AllowInsecureAuth bool     `yaml:"allow_insecure_auth,omitempty" json:"allow_insecure_auth,omitempty"`
	MailFrom          string   `yaml:"mail_from,omitempty" json:"mail_from,omitempty"`
	RcptTo            []string `yaml:"rcpt_to,omitempty" json:"rcpt_to,omitempty"`
	// Send makes the probe deliver a generated test message (DATA); without
	// it the transaction is reset after RCPT.
	Send bool `yaml:"send,omitempty" json:"send,omitempty"`
	// TokenPrefix starts the generated message's probe token (and so its
	// Message-ID): the delivery prober sets it so that a mailbox shared
	// with other probers only has its own messages cleaned up. Not
	// configurable.
	TokenPrefix string `yaml:"-" json:"-"`
	// MinSendInterval limits how often the scheduler lets this module send a
	// real message to one target; runs in between stop after RCPT.
	MinSendInterval time.Duration `yaml:"min_send_interval,omitempty" json:"min_send_interval,omitempty"`
	// ExpectCodes turns a phase into a negative test: the probe succeeds
	// when the server answers that phase with one of these codes.
	ExpectCodes map[Phase][]int `yaml:"expect_codes,omitempty" json:"expect_codes,omitempty"`
	// Message shapes the test message: extra headers, a body of its own.
	Message MessageConfig `yaml:"message,omitempty" json:"message,omitzero"`
	// ProxyProtocol (v1 or v2) sends a PROXY protocol header first, for a
	// server behind HAProxy or a load balancer that expects one.
	ProxyProtocol string `yaml:"proxy_protocol,omitempty" json:"proxy_protocol,omitempty"`
}

// AuthConfig selects a SASL mechanism and its credentials. Secrets are
// config.Secret so that they marshal as "<secret>" wherever a module is shown.
type AuthConfig struct {
	Mechanism    string        `yaml:"mechanism,omitempty" json:"mechanism,omitempty"`
	Username     string        `yaml:"username,omitempty" json:"username,omitempty"`
	Password     config.Secret `yaml:"password,omitempty" json:"password,omitempty"`
	PasswordFile string        `yaml:"password_file,omitempty" json:"password_file,omitempty"`
	// Token and TokenFile carry the bearer token for XOAUTH2 and OAUTHBEARER.
	Token     config.Secret `yaml:"token,omitempty" json:"token,omitempty"`
	TokenFile string        `yaml:"token_file,omitempty" json:"token_file,omitempty"`
}

// FieldError is a validation failure of one setting. Field is the dotted
// YAML path below the module (e.g. "smtp.tls"), so that a config loader can
// prefix the module's path and find the line.
type FieldError struct {
	Field string
	Msg   string
	// Err is the error Msg was made from (%w), if any: a file's, so that
	// a loader can tell a missing file from a wrong setting.
	Err error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

func (e *FieldError) Unwrap() error { return e.Err }

func fieldErr(field, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &FieldError{Field: field, Msg: err.Error(), Err: errors.Unwrap(err)}
}

// SetDirectory makes the module's relative file paths (password_file,
// token_file, tls_config's ca_file, cert_file and key_file, the message's
// body_file) relative to dir, the configuration file's directory, as
// Prometheus does: the meaning of a file must not depend on where the
// exporter was started.
func (m *Module) SetDirectory(dir string) {
	m.SMTP.TLSConfig.SetDirectory(dir)
	m.SMTP.Auth.setDirectory(dir)
	m.SMTP.Message.setDirectory(dir)
	if m.Prober == ProberDelivery {
		m.Delivery.IMAP.TLSConfig.SetDirectory(dir)
		m.Delivery.IMAP.Auth.setDirectory(dir)
		if b := m.Delivery.BounceIMAP; b != nil {
			b.TLSConfig.SetDirectory(dir)
			b.Auth.setDirectory(dir)
		}
	}
}

func (a *AuthConfig) setDirectory(dir string) {
	if a != nil {
		a.PasswordFile = config.JoinDir(dir, a.PasswordFile)
		a.TokenFile = config.JoinDir(dir, a.TokenFile)
	}
}

// SetDefaults fills every unset setting with its default.
func (m *Module) SetDefaults() {
	if m.Prober == "" {
		m.Prober = ProberSMTP
	}
	m.Delivery.setDefaults()
	m.Domain.setDefaults()
	if m.Timeout == 0 {
		m.Timeout = DefaultTimeout
		switch m.Prober {
		case ProberDelivery:
			// The send leg's dialog, then the wait for the message.
			m.Timeout += m.Delivery.DeliveryTimeout
		case ProberDomain:
			m.Timeout = DefaultDomainTimeout
		}
	}
	if m.IPProtocol == "" {
		m.IPProtocol = DefaultIPProtocol
		// A source address has one family: the only one it can reach.
		if ip := net.ParseIP(m.SourceIPAddress); ip != nil && ip.To4() == nil {
			m.IPProtocol = IPProtocol6
		}
	}
	if m.IPProtocolFallback == nil {
		t := true
		m.IPProtocolFallback = &t
	}
	s := &m.SMTP
	if s.TLS == "" {
		s.TLS = TLSStartTLS
	}
	if s.MinSendInterval == 0 {
		s.MinSendInterval = DefaultMinSendInterval
	}
	if s.Auth != nil && s.Auth.Mechanism == "" {
		s.Auth.Mechanism = DefaultAuthMechanism
	}
	if s.Auth != nil {
		s.Auth.Mechanism = strings.ToUpper(s.Auth.Mechanism)
	}
}

func (d *DeliveryModule) setDefaults() {
	if d.PollInterval == 0 {
		d.PollInterval = DefaultPollInterval
	}
	if d.DeliveryTimeout == 0 {
		d.DeliveryTimeout = DefaultDeliveryTimeout
	}
	d.IMAP.setDefaults()
	if d.BounceIMAP != nil {
		d.BounceIMAP.setDefaults()
	}
	for i, method := range d.RequireAuth {
		d.RequireAuth[i] = strings.ToLower(method)
	}
}

func (im *IMAPModule) setDefaults() {
	if im.TLS == "" {
		im.TLS = TLSImplicit
	}
	if a := im.Auth; a != nil {
		if a.Mechanism == "" {
			a.Mechanism = DefaultAuthMechanism
		}
		a.Mechanism = strings.ToUpper(a.Mechanism)
	}
}

// AuthMechanisms are the SASL mechanisms a module may name.
var AuthMechanisms = []string{"PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2", "OAUTHBEARER"}

// phasesWithReplies are the phases in which a server answers a command, so
// the only ones expect_codes can name.
var phasesWithReplies = []Phase{PhaseBanner, PhaseEHLO, PhaseLHLO, PhaseSTARTTLS, PhaseAuth, PhaseMail, PhaseRcpt, PhaseData}

// Validate checks a module after SetDefaults and names the field at fault.
func (m *Module) Validate() error {
	if !slices.Contains(Probers, m.Prober) {
		return fieldErr("prober", "unknown prober %q (want smtp, lmtp, delivery or domain)", m.Prober)
	}
	if m.Timeout < 0 {
		return fieldErr("timeout", "must be positive, got %s", m.Timeout)
	}
	if err := m.validateFamily(); err != nil {
		return err
	}
	s := &m.SMTP
	switch s.ProxyProtocol {
	case "", ProxyProtocolV1, ProxyProtocolV2:
	default:
		return fieldErr("smtp.proxy_protocol", "unknown value %q (want v1 or v2)", s.ProxyProtocol)
	}
	switch s.TLS {
	case TLSNone, TLSStartTLS, TLSImplicit:
	default:
		return fieldErr("smtp.tls", "unknown value %q (want none, starttls or implicit)", s.TLS)
	}
	// What goes on the SMTP command line must not carry control
	// characters: a CR LF would end the command and inject another, a NUL
	// cuts it short at many servers.
	for _, f := range []struct{ field, value string }{
		{"smtp.ehlo", s.EHLO},
		{"smtp.tls_config.server_name", s.TLSConfig.ServerName},
		{"smtp.mail_from", s.MailFrom},
	} {
		if err := CheckText(f.value); err != nil {
			return fieldErr(f.field, "%v", err)
		}
	}
	for i, addr := range s.RcptTo {
		if err := CheckText(addr); err != nil {
			return fieldErr(fmt.Sprintf("smtp.rcpt_to[%d]", i), "%v", err)
		}
	}
	if s.Auth != nil {
		if err := CheckText(s.Auth.Username); err != nil {
			return fieldErr("smtp.auth.username", "%v", err)
		}
	}
	if strings.ContainsAny(s.EHLO, " \t\r\n") {
		return fieldErr("smtp.ehlo", "must be a single domain name or address literal, got %q", s.EHLO)
	}
	if err := validateTLSConfig("smtp.tls_config", s.TLS, &s.TLSConfig); err != nil {
		return err
	}
	if err := validateAuth("smtp.auth", s.Auth, AuthMechanisms, s.TLS, s.AllowInsecureAuth); err != nil {
		return err
	}
	if err := checkBareAddress("smtp.mail_from", s.MailFrom); err != nil {
		return err
	}
	for i, addr := range s.RcptTo {
		if err := checkBareAddress(fmt.Sprintf("smtp.rcpt_to[%d]", i), addr); err != nil {
			return err
		}
	}
	if len(s.RcptTo) > 0 && s.MailFrom == "" {
		return fieldErr("smtp.mail_from", "required when rcpt_to is set (the probe never sends with the null sender)")
	}
	if s.Send && len(s.RcptTo) == 0 {
		return fieldErr("smtp.send", "needs at least one rcpt_to")
	}
	if s.MinSendInterval < 0 {
		return fieldErr("smtp.min_send_interval", "must not be negative, got %s", s.MinSendInterval)
	}
	// Sorted, so that a file with several mistakes always reports the same.
	for _, p := range slices.Sorted(maps.Keys(s.ExpectCodes)) {
		field := "smtp.expect_codes." + string(p)
		switch {
		case !slices.Contains(AllPhases, p):
			return fieldErr(field, "unknown phase %q (want one of %s)", p, joinPhases(phasesWithReplies))
		case !slices.Contains(phasesWithReplies, p):
			return fieldErr(field, "phase %q has no server reply to expect (want one of %s)", p, joinPhases(phasesWithReplies))
		}
		for _, c := range s.ExpectCodes[p] {
			if c < 200 || c > 599 {
				return fieldErr(field, "code %d is not an SMTP reply code (200-599)", c)
			}
		}
	}
	if err := s.Message.validate("smtp.message"); err != nil {
		return err
	}
	switch m.Prober {
	case ProberDelivery:
		return m.validateDelivery()
	case ProberDomain:
		return m.validateDomain()
	}
	return nil
}

// validateFamily checks ip_protocol and source_ip_address, which must
// agree: a socket bound to an IPv4 address cannot reach an IPv6 one.
func (m *Module) validateFamily() error {
	switch m.IPProtocol {
	case IPProtocol4, IPProtocol6:
	case IPProtocolBoth:
		if m.Prober != ProberSMTP && m.Prober != ProberLMTP {
			hint := "a delivery run sends a message: give each family a module of its own"
			if m.Prober == ProberDomain {
				hint = "the domain prober probes the families listed in domain.ip_protocols"
			}
			return fieldErr("ip_protocol", "both is for the smtp and lmtp probers (%s)", hint)
		}
	default:
		return fieldErr("ip_protocol", "unknown value %q (want ip4, ip6 or both)", m.IPProtocol)
	}
	if m.SourceIPAddress == "" {
		return nil
	}
	ip := net.ParseIP(m.SourceIPAddress)
	switch {
	case ip == nil:
		return fieldErr("source_ip_address", "%q is not an IP address", m.SourceIPAddress)
	case ip.IsUnspecified() || ip.IsMulticast():
		return fieldErr("source_ip_address", "%s is not the address of an interface", ip)
	}
	if family := FamilyOf(ip); m.IPProtocol != family {
		return fieldErr("source_ip_address", "%s is an %s address, but ip_protocol is %s: a connection from it reaches %s addresses only", ip, familyName[family], m.IPProtocol, familyName[family])
	}
	return nil
}

// checkSourceFamilies names the first of families that source, a module's
// source_ip_address, cannot reach; "" when it can reach them all.
func checkSourceFamilies(source string, families []string) string {
	ip := net.ParseIP(source)
	if ip == nil {
		return ""
	}
	family := FamilyOf(ip)
	for _, f := range families {
		if f != family {
			return fmt.Sprintf("%s is an %s address, which cannot reach %s MX addresses: list only %s in domain.ip_protocols", ip, familyName[family], familyName[f], family)
		}
	}
	return ""
}

var familyName = map[string]string{IPProtocol4: "IPv4", IPProtocol6: "IPv6"}

// FamilyOf is ip's address family as ip_protocol names it.
func FamilyOf(ip net.IP) string {
	if ip.To4() != nil {
		return IPProtocol4
	}
	return IPProtocol6
}

// PinnedTo returns a copy of m whose runs use family only, never the
// other: one of the runs a target of an ip_protocol both module expands to.
func (m *Module) PinnedTo(family string) *Module {
	pinned := *m
	pinned.IPProtocol = family
	f := false
	pinned.IPProtocolFallback = &f
	return &pinned
}

// validate checks a mailbox's settings; field is its key.
func (im *IMAPModule) validate(field string) error {
	if im.Address == "" {
		return fieldErr(field+".address", "required")
	}
	if err := CheckText(im.Address); err != nil {
		return fieldErr(field+".address", "%v", err)
	}
	if _, _, err := net.SplitHostPort(im.Address); err != nil {
		return fieldErr(field+".address", "want host:port: %v", err)
	}
	switch im.TLS {
	case TLSNone, TLSStartTLS, TLSImplicit:
	default:
		return fieldErr(field+".tls", "unknown value %q (want none, starttls or implicit)", im.TLS)
	}
	if err := validateTLSConfig(field+".tls_config", im.TLS, &im.TLSConfig); err != nil {
		return err
	}
	if im.Auth == nil {
		return fieldErr(field+".auth", "required")
	}
	if err := CheckText(im.Auth.Username); err != nil {
		return fieldErr(field+".auth.username", "%v", err)
	}
	return validateAuth(field+".auth", im.Auth, IMAPAuthMechanisms, im.TLS, im.AllowInsecureAuth)
}

// validateDelivery checks the delivery prober's settings: a send leg that
// sends, and a mailbox to find the message in.
func (m *Module) validateDelivery() error {
	s, d := &m.SMTP, &m.Delivery
	if s.MailFrom == "" {
		return fieldErr("smtp.mail_from", "required by prober delivery")
	}
	if len(s.RcptTo) == 0 {
		return fieldErr("smtp.rcpt_to", "required by prober delivery")
	}
	if len(s.ExpectCodes) > 0 {
		return fieldErr("smtp.expect_codes", "not supported by prober delivery")
	}
	if err := d.IMAP.validate("delivery.imap"); err != nil {
		return err
	}
	if d.BounceIMAP != nil {
		if err := d.BounceIMAP.validate("delivery.bounce_imap"); err != nil {
			return err
		}
	}
	for i, f := range d.Folders {
		if f == "" || CheckText(f) != nil {
			return fieldErr(fmt.Sprintf("delivery.folders[%d]", i), "must be a non-empty folder name without control characters")
		}
	}
	if d.PollInterval < 0 {
		return fieldErr("delivery.poll_interval", "must be positive, got %s", d.PollInterval)
	}
	if d.DeliveryTimeout < 0 {
		return fieldErr("delivery.delivery_timeout", "must be positive, got %s", d.DeliveryTimeout)
	}
	if d.DeliveryTimeout >= m.Timeout {
		return fieldErr("delivery.delivery_timeout", "%s leaves nothing of the module's timeout %s for the send leg: set a longer timeout", d.DeliveryTimeout, m.Timeout)
	}
	if err := CheckText(d.AuthservID); err != nil {
		return fieldErr("delivery.authserv_id", "%v", err)
	}
	if d.AuthresWithoutID && d.AuthservID != "" {
		return fieldErr("delivery.authres_without_id", "cannot be set with delivery.authserv_id: a receiver either names itself in its Authentication-Results or does not")
	}
	for i, method := range d.RequireAuth {
		if !slices.Contains(AuthMethods, method) {
			return fieldErr(fmt.Sprintf("delivery.require_auth[%d]", i), "unknown method %q (want spf, dkim or dmarc)", method)
		}
	}
	if len(d.RequireAuth) > 0 && d.AuthservID == "" && !d.AuthresWithoutID {
		return fieldErr("delivery.require_auth", "no Authentication-Results header is trusted, so no result could pass: set delivery.authserv_id to the receiver's authserv-id, or delivery.authres_without_id: true for a receiver that writes none (Microsoft 365)")
	}
	return nil
}

// validateTLSConfig checks the tls_config at field of a leg using tls.
func validateTLSConfig(field, tls string, tc *config.TLSConfig) error {
	if err := tc.Validate(); err != nil {
		return fieldErr(field, "%v", err)
	}
	for _, f := range []struct{ key, path string }{
		{"ca_file", tc.CAFile}, {"cert_file", tc.CertFile}, {"key_file", tc.KeyFile},
	} {
		if err := checkReadableFile(field+"."+f.key, f.path); err != nil {
			return err
		}
	}
	if tls != TLSNone {
		// Built now: an unreadable CA file or a bad client key is the
		// operator's to fix at load, not a failing probe's at every run.
		if _, err := config.NewTLSConfig(tc); err != nil {
			return fieldErr(field, "%v", err)
		}
	}
	return nil
}

// validateAuth checks the auth block at field (smtp.auth or
// delivery.imap.auth) of a leg using tls.
func validateAuth(field string, a *AuthConfig, mechanisms []string, tls string, allowInsecure bool) error {
	if a == nil {
		return nil
	}
	if !slices.Contains(mechanisms, a.Mechanism) {
		return fieldErr(field+".mechanism", "unsupported mechanism %q (want one of %s)", a.Mechanism, strings.Join(mechanisms, ", "))
	}
	if a.Username == "" {
		return fieldErr(field+".username", "required")
	}
	// The wrong kind of credential is checked first: it usually means a
	// forgotten or wrong mechanism, which "needs exactly one of" would hide.
	bearer := a.Mechanism == "XOAUTH2" || a.Mechanism == "OAUTHBEARER"
	if bearer {
		if a.Password != "" || a.PasswordFile != "" {
			return fieldErr(field, "%s takes a token or token_file, not a password", a.Mechanism)
		}
		if (a.Token == "") == (a.TokenFile == "") {
			return fieldErr(field, "%s needs exactly one of token and token_file", a.Mechanism)
		}
	} else {
		if a.Token != "" || a.TokenFile != "" {
			return fieldErr(field, "%s takes a password or password_file, not a token (tokens are for XOAUTH2 and OAUTHBEARER)", a.Mechanism)
		}
		if (a.Password == "") == (a.PasswordFile == "") {
			return fieldErr(field, "%s needs exactly one of password and password_file", a.Mechanism)
		}
	}
	for _, f := range []struct{ field, path string }{
		{field + ".password_file", a.PasswordFile},
		{field + ".token_file", a.TokenFile},
	} {
		if err := checkReadableFile(f.field, f.path); err != nil {
			return err
		}
	}
	if tls == TLSNone && !allowInsecure {
		return fieldErr(field, "AUTH without TLS sends credentials in clear text: use tls: starttls or implicit, or set allow_insecure_auth: true")
	}
	return nil
}

// checkReadableFile checks, when path is set, that it names a regular file
// this process can open. The probe reads the file again at each run (so a
// rotated secret is picked up), but a directory, a missing or an
// unreadable file is a configuration mistake that --config.check must
// catch, not a probe failing with reason other on every run.
func checkReadableFile(field, path string) error {
	if path == "" {
		return nil
	}
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		return fieldErr(field, "%w", err)
	case fi.IsDir():
		return fieldErr(field, "%s is a directory, not a file", path)
	case !fi.Mode().IsRegular():
		// Opening a named pipe would block until a writer comes.
		return fieldErr(field, "%s is not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return fieldErr(field, "%w", err)
	}
	f.Close()
	return nil
}

// CheckText rejects control characters and invalid UTF-8 in a setting that
// reaches the SMTP command line or a Prometheus label value.
func CheckText(s string) error {
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], string(utf8.RuneError)):
			return fmt.Errorf("is not valid UTF-8 (at byte %d)", i)
		case unicode.IsControl(r):
			return fmt.Errorf("must not contain control characters, found %U at byte %d", r, i)
		}
	}
	return nil
}

// checkBareAddress rejects what the probe would have to quote or wrap: the
// dialog adds the angle brackets itself.
func checkBareAddress(field, addr string) error {
	if strings.ContainsAny(addr, "<>\r\n \t") {
		return fieldErr(field, "address %q must be bare (no angle brackets or spaces)", addr)
	}
	return nil
}

func joinPhases(ps []Phase) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = string(p)
	}
	return strings.Join(s, ", ")
}

// Secret returns the password or token. A file is read again when it
// changed (see fileCache), so that the next probe picks up a rotated
// credential without a reload.
func (a *AuthConfig) Secret() (string, error) {
	switch {
	case a.Password != "":
		return string(a.Password), nil
	case a.Token != "":
		return string(a.Token), nil
	}
	file := a.PasswordFile
	if file == "" {
		file = a.TokenFile
	}
	return secretFiles.get(file, []string{file}, func() (string, error) {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", err
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	})
}

// secretFiles keeps the password and token files' contents, by path.
var secretFiles fileCache[string, string]

// DefaultEHLOName is the machine's fully qualified name. It returns "" when
// only a bare or "localhost" name is known: the probe then greets with its
// connection's address literal, which servers accept and "localhost" many
// reject as a forged greeting.
func DefaultEHLOName() string {
	host, err := os.Hostname()
	if err != nil {
		return ""
	}
	if strings.Contains(host, ".") && !strings.HasPrefix(host, "localhost") {
		return host
	}
	return ""
}

// The collector asks a module these questions instead of reading a
// prober's settings: what it needs to schedule, limit and expose a run is
// the module's to answer, whatever the prober.

// SendsMail reports whether a run delivers a test message, which the
// scheduler spaces out by MinSendInterval.
func (m *Module) SendsMail() bool { return m.SMTP.Send || m.Prober == ProberDelivery }

// MinSendInterval is the least time between two runs that send mail to
// one target.
func (m *Module) MinSendInterval() time.Duration { return m.SMTP.MinSendInterval }

// WithoutSend returns a copy of m whose runs send no mail: the same
// dialog, reset before the message.
func (m Module) WithoutSend() Module {
	m.SMTP.Send = false
	if m.Prober == ProberDelivery {
		// A delivery run without its message is the send leg's dialog.
		m.Prober = ProberSMTP
	}
	return m
}

// CredentialsPinned reports whether the module's credentials, if any, can
// only reach the server the module names: over TLS verified against a
// server_name of its own. Without that, a probe of an address a caller
// chose would hand them to any host whose certificate is valid for the
// host's own name.
func (m *Module) CredentialsPinned() bool {
	s := &m.SMTP
	if m.Prober == ProberDelivery {
		// The mailboxes' addresses are the module's own, never a caller's,
		// but their credentials still must not go to an unverified server.
		for _, im := range []*IMAPModule{&m.Delivery.IMAP, m.Delivery.BounceIMAP} {
			if im != nil && im.Auth != nil && (im.TLS == TLSNone || im.TLSConfig.InsecureSkipVerify) {
				return false
			}
		}
	}
	return s.Auth == nil || (s.TLS != TLSNone && s.TLSConfig.ServerName != "" && !s.TLSConfig.InsecureSkipVerify)
}

// ConcurrencyClass names the pool of probe slots a run of this module
// takes. Runs of one class compete for its slots only, so that a prober
// that waits minutes (a delivery) cannot keep a dialog that lasts a second
// from starting.
func (m *Module) ConcurrencyClass() string {
	switch m.Prober {
	case ProberDelivery:
		return ClassDelivery
	case ProberDomain:
		return ClassDomain
	}
	return ClassDialog
}

// Concurrency classes: ClassDialog for probes that hold a connection for
// one dialog (SMTP and LMTP), ClassDelivery for those that wait for a
// message to arrive.
const (
	ClassDialog   = "dialog"
	ClassDelivery = "delivery"
)

// Phases lists, in dialog order, the phases a run of m goes through when
// nothing fails: the one place that says which phases a module has. The
// dialog runs exactly these; a run that stops early reports fewer.
func (m *Module) Phases() []Phase {
	if m.Prober == ProberDomain {
		return m.domainPhases()
	}
	s := &m.SMTP
	ps := []Phase{PhaseResolve, PhaseConnect}
	if s.TLS == TLSImplicit {
		ps = append(ps, PhaseTLS)
	}
	ps = append(ps, PhaseBanner, m.HelloPhase())
	if s.TLS == TLSStartTLS {
		ps = append(ps, PhaseSTARTTLS)
	}
	if s.Auth != nil {
		ps = append(ps, PhaseAuth)
	}
	if s.MailFrom != "" {
		ps = append(ps, PhaseMail)
	}
	if len(s.RcptTo) > 0 {
		ps = append(ps, PhaseRcpt)
	}
	if s.Send || m.Prober == ProberDelivery {
		ps = append(ps, PhaseData)
	}
	ps = append(ps, PhaseQuit)
	if m.Prober == ProberDelivery {
		ps = append(ps, PhaseIMAPConnect, PhaseIMAPAuth, PhaseWait)
	}
	return ps
}

// HelloPhase is the greeting's phase: lhlo for LMTP, else ehlo.
func (m *Module) HelloPhase() Phase {
	if m.Prober == ProberLMTP {
		return PhaseLHLO
	}
	return PhaseEHLO
}
