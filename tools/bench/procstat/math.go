package procstat

import (
	"math"
	"slices"
)

func nan() float64         { return math.NaN() }
func isInf(f float64) bool { return math.IsInf(f, 1) }

// Slope is the least-squares slope of y over x; NaN with fewer than two
// distinct x.
func Slope(x, y []float64) float64 {
	n := float64(min(len(x), len(y)))
	if n < 2 {
		return nan()
	}
	var sx, sy float64
	for i := range int(n) {
		sx += x[i]
		sy += y[i]
	}
	mx, my := sx/n, sy/n
	var sxy, sxx float64
	for i := range int(n) {
		dx := x[i] - mx
		sxy += dx * (y[i] - my)
		sxx += dx * dx
	}
	if sxx == 0 {
		return nan()
	}
	return sxy / sxx
}

// TheilSen is the Theil–Sen slope of y over x: the median of the slopes
// between every two points with distinct x; NaN without such a pair. It
// follows a trend that moves every point and ignores points raised by a
// passing event, as long as fewer than about three in ten are: a memory
// series sampled while the odd scrape is being served keeps its slope.
func TheilSen(x, y []float64) float64 {
	n := min(len(x), len(y))
	slopes := make([]float64, 0, n*(n-1)/2)
	for i := range n {
		for j := i + 1; j < n; j++ {
			if dx := x[j] - x[i]; dx != 0 {
				slopes = append(slopes, (y[j]-y[i])/dx)
			}
		}
	}
	if len(slopes) == 0 {
		return nan()
	}
	slices.Sort(slopes)
	m := len(slopes) / 2
	if len(slopes)%2 == 1 {
		return slopes[m]
	}
	return (slopes[m-1] + slopes[m]) / 2
}
