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

func escape(w *bufio.Writer, s string, plus bool) {
	last := 0
	for i := 0; i < len(s); i++ {
		var repl string
		switch s[i] {
		case 0:
			repl = "\uFFFD"
		case '"':
			repl = "&#34;"
		case '\'':
			repl = "&#39;"
		case '&':
			repl = "&amp;"
		case '<':
			repl = "&lt;"
		case '>':
			repl = "&gt;"
		case '+':
			if !plus {
				continue
			}
			repl = "&#43;"
		default:
			continue
		}
		w.WriteString(s[last:i])
		w.WriteString(repl)
		last = i + 1
	}
	w.WriteString(s[last:])
}

// escBytes writes b as escText writes string(b).
func escBytes(w *bufio.Writer, b []byte) {
	last := 0
	for i := 0; i < len(b); i++ {
		var repl string
		switch b[i] {
		case 0:
			repl = "\uFFFD"
		case '"':
			repl = "&#34;"
		case '\'':
			repl = "&#39;"
		case '&':
			repl = "&amp;"
		case '<':
			repl = "&lt;"
		case '>':
			repl = "&gt;"
		default:
			continue
		}
		w.Write(b[last:i])
		w.WriteString(repl)
		last = i + 1
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
