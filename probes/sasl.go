package probes

// XOAuth2Response is the client response of XOAUTH2, Google's and
// Microsoft's bearer-token mechanism, which go-sasl does not implement. It
// is the same for SMTP and IMAP; what follows an error challenge differs
// per protocol, so each prober keeps its own client around it.
func XOAuth2Response(user, token string) []byte {
	return []byte("user=" + user + "\x01auth=Bearer " + token + "\x01\x01")
}
