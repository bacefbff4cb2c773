#!/usr/bin/env python3
"""bench/shutdown_latency.py -- the same measurement as shutdown_latency.cpp
for CPython's socketserver: server.shutdown() timed while serve_forever(0.5)
runs on a thread (same varying 1-20 ms delay before each shutdown).

    shutdown_latency.py [REPETITIONS]   -> JSON: median_us, max_us, mean_us
"""
import json
import socketserver
import sys
import threading
import time


class Nothing(socketserver.StreamRequestHandler):
    def handle(self):
        pass


def main():
    repetitions = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    took = []
    with socketserver.TCPServer(("127.0.0.1", 0), Nothing) as server:
        for i in range(repetitions):
            serving = threading.Thread(target=server.serve_forever, args=(0.5,))
            serving.start()
            time.sleep((1000 + (i * 7919) % 19000) / 1e6)
            start = time.perf_counter()
            server.shutdown()
            took.append((time.perf_counter() - start) * 1e6)
            serving.join()
    took.sort()
    print(json.dumps({"repetitions": repetitions, "median_us": round(took[len(took) // 2], 1),
                      "p99_us": round(took[len(took) * 99 // 100], 1),
                      "max_us": round(took[-1], 1), "mean_us": round(sum(took) / len(took), 1)}))


if __name__ == "__main__":
    main()
