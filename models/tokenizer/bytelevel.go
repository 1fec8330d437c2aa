package tokenizer

// byteRunes maps each byte to the printable rune that stands for it in a
// byte-level BPE vocabulary: printable Latin-1 bytes map to themselves, the
// other 68 bytes to U+0100 onwards in byte order. The vocabulary files spell
// every token in these runes.
var byteRunes = func() (m [256]rune) {
	next := rune(256)
	for b := 0; b < 256; b++ {
		printable := (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
		if printable {
			m[b] = rune(b)
		} else {
			m[b] = next
			next++
		}
	}
	return m
}()

// runeBytes is the inverse of byteRunes.
var runeBytes = func() map[rune]byte {
	m := make(map[rune]byte, 256)
	for b, r := range byteRunes {
		m[r] = byte(b)
	}
	return m
}()

// unmapByteLevel turns a vocabulary spelling back into the raw bytes it
// stands for. ok is false when the spelling holds a rune outside the map.
func unmapByteLevel(s string) (raw []byte, ok bool) {
	raw = make([]byte, 0, len(s))
	for _, r := range s {
		b, found := runeBytes[r]
		if !found {
			return nil, false
		}
		raw = append(raw, b)
	}
	return raw, true
}

// mapByteLevel spells raw bytes in byte-level runes.
func mapByteLevel(raw []byte) string {
	out := make([]rune, len(raw))
	for i, b := range raw {
		out[i] = byteRunes[b]
	}
	return string(out)
}
