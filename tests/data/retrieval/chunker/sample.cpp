#include <vector>

namespace geo {

// A circle.
class Circle {
public:
    explicit Circle(double r) : r_(r) {}
    double area() const { return 3.14159 * r_ * r_; }
private:
    double r_;
};

}  // namespace geo

template <typename T>
T max_of(T a, T b) {
    return a > b ? a : b;
}

void geo_print(const geo::Circle& c) {}
