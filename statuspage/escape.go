package statuspage

import "bufio"

// The page's rows and group headers are written without the template
// engine (rows.go says why), so the escapers are here, writing straight
// into the buffer. Each is exact for element text and double-quoted
// attribute values, and matches, byte for byte, the escaper the page used
// before: text/template's HTMLEscapeString for the rows, html/template's
// for the group headers (which also escapes '+'). Both replace ASCII
// bytes only, which never occur inside a multi-byte UTF-8 sequence, so
// working on bytes is the same as working on runes.

// escText writes s as template.HTMLEscapeString(s) does.
func escText(w *bufio.Writer, s string) { escape(w, s, false) }

// escHTMLTemplate writes s as html/template writes a string value in
// element text or a quoted attribute.
func escHTMLTemplate(w *bufio.Writer, s string) { escape(w, s, true) }

// replacement is what the escapers write for byte c, "" for c itself;
// plus says whether '+' is escaped (html/template does, text/template
// does not).
func replacement(c byte, plus bool) string {
	switch c {
	case 0:
		return "\uFFFD"
	case '"':
		return "&#34;"
	case '\'':
		return "&#39;"
	case '&':
		return "&amp;"
	case '<':
		return "&lt;"
	case '>':
		return "&gt;"
	case '+':
		if plus {
			return "&#43;"
		}
	}
	return ""
}

func escape(w *bufio.Writer, s string, plus bool) {
	last := 0
	for i := 0; i < len(s); i++ {
		if repl := replacement(s[i], plus); repl != "" {
			w.WriteString(s[last:i])
			w.WriteString(repl)
			last = i + 1
		}
	}
	w.WriteString(s[last:])
}

// escBytes writes b as escText writes string(b), without the string.
func escBytes(w *bufio.Writer, b []byte) {
	last := 0
	for i := 0; i < len(b); i++ {
		if repl := replacement(b[i], false); repl != "" {
			w.Write(b[last:i])
			w.WriteString(repl)
			last = i + 1
		}
	}
	w.Write(b[last:])
}

// appendQueryEscape appends url.QueryEscape(s) to b. Its output is
// letters, digits, "-_.~", "%" and "+" only.
func appendQueryEscape(b []byte, s string) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == '~':
			b = append(b, c)
		case c == ' ':
			b = append(b, '+')
		default:
			b = append(b, '%', hex[c>>4], hex[c&15])
		}
	}
	return b
}
