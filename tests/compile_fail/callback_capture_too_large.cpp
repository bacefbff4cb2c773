// Must not compile: a callback stores its lambda inside the watcher, in room
// for three pointers; a bigger capture would need the heap.
// expect: captures too much
#include <sockserv.hpp>

int main() {
  sockserv::basic_loop<> loop;
  long a = 1, b = 2, c = 3, d = 4;
  sockserv::timer t{loop, [a, b, c, d] { (void)(a + b + c + d); }};
}
