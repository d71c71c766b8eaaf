package geometry

import "math"

// Point is a point in the plane.
type Point struct {
	X, Y float64
}

// Distance returns the distance between two points.
func Distance(a, b Point) float64 {
	return math.Hypot(a.X-b.X, a.Y-b.Y)
}

// Scale multiplies both coordinates.
func (p *Point) Scale(f float64) {
	p.X *= f
	p.Y *= f
}

type Shape interface {
	Area() float64
}
