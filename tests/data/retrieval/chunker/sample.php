<?php
namespace App;

use Foo\Bar;

// Adds numbers.
function add($a, $b) {
    return $a + $b;
}

class User {
    public function name(): string {
        return $this->name;
    }

    public function email(): string {
        return $this->email;
    }
}

interface Named {}
