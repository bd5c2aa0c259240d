package bench

import (
	"testing"

	crossplane "github.com/nginxinc/nginx-go-crossplane"
)

// BenchmarkReload10kThousandFilesSmallLexChan measures the reload with
// crossplane's lexer channel at 64 tokens instead of 2,048 (98 KB of
// channel buffer per parsed file): the fix proposed in docs/performance.md.
func BenchmarkReload10kThousandFilesSmallLexChan(b *testing.B) {
	crossplane.SetTokenChanCap(64)
	defer crossplane.SetTokenChanCap(crossplane.TokenChanCap)
	benchmarkReload(b, 1000)
}
