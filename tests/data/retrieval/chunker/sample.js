import { x } from "./x.js";

// Adds two numbers.
export function add(a, b) {
  return a + b;
}

const multiply = (a, b) => a * b;

class Shape {
  area() {
    return 0;
  }
}

export default class Circle extends Shape {
  constructor(r) {
    super();
    this.r = r;
  }
}
