/** A point in the plane. */
export interface Point {
  x: number;
  y: number;
}

type Id = string;

enum Color { Red, Green }

@Component({ selector: "app" })
export class AppComponent {
  title = "app";
  greet(name: string): string {
    return `hi ${name}`;
  }
}

export function distance(a: Point, b: Point): number {
  return Math.hypot(a.x - b.x, a.y - b.y);
}
