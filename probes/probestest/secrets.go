package probestest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// MinSecretFragment is the length from which a piece of a secret counts
// as leaked: the redactor's guarantee (probes.MinFragment), repeated here
// so that this package stays free of the code it tests.
const MinSecretFragment = 6

// SecretFragmentForms maps every form of every fragment of secret that is
// MinSecretFragment bytes long to a description: the fragment itself,
// Go-quoted (%q, as errors quote lines), JSON-escaped with and without
// HTML escaping, and its base64 in both alphabets at every alignment, less
// the edge characters that depend on the neighbouring bytes. A longer
// fragment holds a short one in each of these forms, so checking the short
// ones suffices.
func SecretFragmentForms(secret string) map[string]string {
	forms := map[string]string{}
	for i := 0; i+MinSecretFragment <= len(secret); i++ {
		f := secret[i : i+MinSecretFragment]
		q := strconv.Quote(f)
		forms[q[1:len(q)-1]] = fmt.Sprintf("fragment %q, Go-quoted", f)
		for _, html := range []bool{true, false} {
			var b bytes.Buffer
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(html)
			if err := enc.Encode(f); err != nil {
				panic(err)
			}
			j := strings.TrimSpace(b.String())
			forms[j[1:len(j)-1]] = fmt.Sprintf("fragment %q, JSON-escaped", f)
		}
		for name, enc := range map[string]*base64.Encoding{"std": base64.RawStdEncoding, "url": base64.RawURLEncoding} {
			for align := 0; align < 3; align++ {
				full := enc.EncodeToString(append(make([]byte, align), f...))
				lo, hi := (8*align+5)/6, (8*align+8*len(f))/6
				forms[full[lo:hi]] = fmt.Sprintf("fragment %q, base64 (%s) at alignment %d", f, name, align)
			}
		}
		forms[f] = fmt.Sprintf("fragment %q", f)
	}
	return forms
}

// FindSecretFragment reports the first form of a fragment of secret that
// text holds, with an excerpt of text around it; "" when there is none.
func FindSecretFragment(text string, forms map[string]string) (what, excerpt string) {
	for form, what := range forms {
		if i := strings.Index(text, form); i >= 0 {
			return what, text[max(0, i-40):min(len(text), i+len(form)+40)]
		}
	}
	return "", ""
}
