// A small shopping cart: items, discounts and totals.
import { formatPrice } from "./format.js";

const TAX_RATE = 0.2;

export function createCart(owner) {
  const items = [];
  let discount = null;
  return { owner, items, discount };
}

export function addItem(cart, product, quantity) {
  if (quantity <= 0) {
    throw new Error("quantity must be positive");
  }
  const existing = cart.items.find((item) => item.id === product.id);
  if (existing) {
    existing.quantity += quantity;
    return existing;
  }
  const entry = { id: product.id, name: product.name, price: product.price, quantity };
  cart.items.push(entry);
  return entry;
}

export function removeItem(cart, productId) {
  const index = cart.items.findIndex((item) => item.id === productId);
  if (index === -1) {
    return false;
  }
  cart.items.splice(index, 1);
  return true;
}

export function subtotal(cart) {
  let sum = 0;
  for (const item of cart.items) {
    sum += item.price * item.quantity;
  }
  return sum;
}

export function applyDiscount(cart, code) {
  const codes = { SPRING: 0.1, VIP: 0.25 };
  const rate = codes[code];
  if (rate === undefined) {
    cart.discount = null;
    return false;
  }
  cart.discount = { code, rate };
  return true;
}

export function total(cart) {
  const base = subtotal(cart);
  const reduced = cart.discount ? base * (1 - cart.discount.rate) : base;
  const tax = reduced * TAX_RATE;
  return Math.round((reduced + tax) * 100) / 100;
}

export class Receipt {
  constructor(cart) {
    this.cart = cart;
    this.lines = [];
  }

  build() {
    this.lines = [];
    for (const item of this.cart.items) {
      const amount = item.price * item.quantity;
      this.lines.push(`${item.name} x${item.quantity}: ${formatPrice(amount)}`);
    }
    this.lines.push(`Total: ${formatPrice(total(this.cart))}`);
    return this.lines;
  }

  render(separator) {
    const lines = this.build();
    if (lines.length === 0) {
      return "";
    }
    return lines.join(separator);
  }
}
