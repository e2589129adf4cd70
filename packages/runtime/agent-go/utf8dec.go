// Output as text, as node's StringDecoder gives it: a character split across reads stays whole,
// invalid bytes become U+FFFD (one per maximal invalid subpart, as WHATWG's decoder does), and an
// incomplete character at the very end is one U+FFFD.
package main

import (
	"strings"
	"unicode/utf8"
)

type utf8Decoder struct{ pending []byte }

// seqLen: for a lead byte, the length of its sequence and the range of its first continuation
// byte (0 length: not a lead byte).
func seqLen(b byte) (n int, lo, hi byte) {
	switch {
	case b < 0x80:
		return 1, 0, 0
	case b >= 0xc2 && b <= 0xdf:
		return 2, 0x80, 0xbf
	case b == 0xe0:
		return 3, 0xa0, 0xbf
	case b == 0xed:
		return 3, 0x80, 0x9f
	case b >= 0xe1 && b <= 0xef:
		return 3, 0x80, 0xbf
	case b == 0xf0:
		return 4, 0x90, 0xbf
	case b >= 0xf1 && b <= 0xf3:
		return 4, 0x80, 0xbf
	case b == 0xf4:
		return 4, 0x80, 0x8f
	}
	return 0, 0, 0
}

// Write decodes what can be decoded of pending+b; an incomplete sequence at the end waits.
func (d *utf8Decoder) Write(b []byte) string {
	buf := b
	if len(d.pending) > 0 {
		buf = append(d.pending, b...)
		d.pending = nil
	}
	// The common case: valid UTF-8 that ends on a character boundary.
	if utf8.Valid(buf) {
		return string(buf)
	}
	var out strings.Builder
	out.Grow(len(buf))
	for i := 0; i < len(buf); {
		c := buf[i]
		if c < 0x80 {
			out.WriteByte(c)
			i++
			continue
		}
		n, lo, hi := seqLen(c)
		if n == 0 {
			out.WriteRune(utf8.RuneError)
			i++
			continue
		}
		k := 1 // bytes of the sequence that are as they should be
		for k < n && i+k < len(buf) {
			x := buf[i+k]
			if k == 1 {
				if x < lo || x > hi {
					break
				}
			} else if x < 0x80 || x > 0xbf {
				break
			}
			k++
		}
		switch {
		case k == n:
			out.Write(buf[i : i+n])
			i += n
		case i+k == len(buf):
			// Incomplete at the end of what was read: the rest may come with the next read.
			d.pending = append([]byte(nil), buf[i:]...)
			i = len(buf)
		default:
			out.WriteRune(utf8.RuneError)
			i += k
		}
	}
	return out.String()
}

// End is what is left: an incomplete character becomes one U+FFFD.
func (d *utf8Decoder) End() string {
	if len(d.pending) == 0 {
		return ""
	}
	d.pending = nil
	return string(utf8.RuneError)
}
