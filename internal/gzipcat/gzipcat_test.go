package gzipcat

import (
	"bytes"
	"compress/gzip"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os/exec"
	"testing"
)

func TestCombine(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	for range 200 {
		a := rng.IntN(len(data))
		b := a + rng.IntN(len(data)-a+1)
		want := crc32.ChecksumIEEE(data[:b])
		got := Combine(crc32.ChecksumIEEE(data[:a]), crc32.ChecksumIEEE(data[a:b]), int64(b-a))
		if got != want {
			t.Fatalf("Combine over [0,%d)+[%d,%d) = %08x, want %08x", a, a, b, got, want)
		}
	}
	if got := Combine(0, 0, 0); got != 0 {
		t.Errorf("Combine of empty strings = %08x", got)
	}
}

// page is text like an exposition page: repetitive, so that the
// compressor emits matches and Huffman blocks, not only literals.
func page(rng *rand.Rand, n int) []byte {
	var b bytes.Buffer
	for b.Len() < n {
		b.WriteString(`nginx_upstream_probe_success{upstream="u`)
		b.WriteString(string(rune('a' + rng.IntN(26))))
		b.WriteString(`",server="127.0.0.1:`)
		for range 1 + rng.IntN(5) {
			b.WriteByte(byte('0' + rng.IntN(10)))
		}
		b.WriteString("\"} 1\n")
		if rng.IntN(50) == 0 {
			for range rng.IntN(300) {
				b.WriteByte(byte(rng.Uint32()))
			}
		}
	}
	return b.Bytes()[:n]
}

// compress splits plain at random into segments (some empty), each
// compressed independently and taken in random parts, into one member.
func compress(t *testing.T, rng *rand.Rand, plain []byte, maxSeg int) []byte {
	t.Helper()
	var out bytes.Buffer
	m := NewMember(&out)
	seg := NewSegment()
	for rest := plain; ; {
		k := 0
		if len(rest) > 0 && rng.IntN(8) != 0 {
			k = 1 + rng.IntN(min(len(rest), maxSeg))
		}
		seg.Reset(nil)
		part := rest[:k]
		for len(part) > 0 {
			j := 1 + rng.IntN(len(part))
			if _, err := seg.Write(part[:j]); err != nil {
				t.Fatal(err)
			}
			part = part[j:]
			if rng.IntN(2) == 0 {
				if err := m.Write(seg.Take(nil)); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := seg.End(); err != nil {
			t.Fatal(err)
		}
		if err := m.Write(seg.Take(nil)); err != nil {
			t.Fatal(err)
		}
		rest = rest[k:]
		if len(rest) == 0 && rng.IntN(3) != 0 {
			break
		}
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestMemberDecompresses(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	gzipBin, _ := exec.LookPath("gzip")
	for i, c := range []struct{ size, maxSeg int }{
		{0, 1}, {1, 1}, {100, 1}, {1000, 7}, {100 << 10, 4 << 10}, {3 << 20, 300 << 10}, {2 << 20, 2 << 20},
	} {
		plain := page(rng, c.size)
		z := compress(t, rng, plain, c.maxSeg)
		zr, err := gzip.NewReader(bytes.NewReader(z))
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		zr.Multistream(false)
		got, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if !bytes.Equal(got, plain) {
			t.Fatalf("case %d: decompressed %d bytes differ from the %d written", i, len(got), len(plain))
		}
		// Read as a multi-member stream, nothing follows the one member.
		if err := zr.Reset(bytes.NewReader(z)); err != nil {
			t.Fatal(err)
		}
		if all, err := io.ReadAll(zr); err != nil || !bytes.Equal(all, plain) {
			t.Fatalf("case %d: as a multi-member stream: %d bytes, %v", i, len(all), err)
		}
		if gzipBin != "" {
			cmd := exec.Command(gzipBin, "-t")
			cmd.Stdin = bytes.NewReader(z)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("case %d: gzip -t: %v: %s", i, err, out)
			}
		}
	}
}

// TestMemberDetectsCorruption: the trailer is checked, so the tests
// above would see a wrong CRC or length.
func TestMemberDetectsCorruption(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	plain := page(rng, 10000)
	z := compress(t, rng, plain, 1000)
	for _, off := range []int{len(z) - 8, len(z) - 1} {
		bad := bytes.Clone(z)
		bad[off] ^= 1
		zr, err := gzip.NewReader(bytes.NewReader(bad))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadAll(zr); err == nil {
			t.Errorf("trailer byte %d flipped: no error", off)
		}
	}
}
