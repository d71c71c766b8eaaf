from shapes import area

small = area(1, 2)
large = area(30, 40)
