require "json"

# Greets people.
class Greeter
  def initialize(name)
    @name = name
  end

  def greet
    "Hello #{@name}"
  end
end

module Util
  def self.slug(s)
    s.downcase.gsub(" ", "-")
  end
end
