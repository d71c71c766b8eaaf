using System;

namespace Demo
{
    /// <summary>A greeter.</summary>
    [Serializable]
    public class Greeter
    {
        public string Greet(string name)
        {
            return "Hello " + name;
        }
    }

    public interface IShape { double Area(); }

    public enum Color { Red, Green }
}
