package procstat

import "math"

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
