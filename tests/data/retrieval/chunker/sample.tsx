import React from "react";

// Renders a greeting.
export function Greeting({ name }: { name: string }) {
  return <div className="greeting">Hello {name}</div>;
}

export const Button = (props: { label: string }) => <button>{props.label}</button>;
