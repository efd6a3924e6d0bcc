"""Fork server for the kill tests: imports torch and builds the graph once, then forks trainers.

Used by ``tests/test_reliability_kill.py`` only. Paying the ~2 s import per restart would make
20+ kill/resume cycles too slow for CI; a forked child is a real separate process that is killed
with SIGKILL, holding its own lock and files.

Protocol: one command per line on stdin, one reply line on stdout.

- ``start RUN_DIR OUT`` -> ``PID``: fork a child that runs ``train(config, kg, run_dir=RUN_DIR)``
  and writes ``{"metrics": ...}`` to ``OUT`` (or the error to ``OUT``) before exiting. Before each
  epoch the child appends ``"<pid> <epoch>\\n"`` to ``RUN_DIR.progress`` (beside the folder).
- ``kill PID`` -> ``killed`` if the child was still running (it is then SIGKILLed and reaped),
  else ``exited CODE``.
- ``wait PID`` -> ``exited CODE`` (blocks).
- ``quit``.

The parent never trains, so no torch thread pool exists at fork time.
"""

import json
import os
import signal
import sys
import traceback


def child(config, kg, run_dir: str, out: str) -> int:
    import kgbias.training as training

    real_epoch = training.train_epoch
    progress = run_dir.rstrip("/") + ".progress"

    def logged_epoch(*args, **kwargs):
        fd = os.open(progress, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.write(fd, f"{os.getpid()} {args[7]}\n".encode())
        os.close(fd)
        return real_epoch(*args, **kwargs)

    training.train_epoch = logged_epoch
    try:
        run = training.train(config, kg=kg, run_dir=run_dir)
        result = {"metrics": run.metrics}
        code = 0
    except BaseException as error:  # reported to the test, which fails on it
        result = {"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()}
        code = 3
    with open(out + ".tmp", "w") as file:
        json.dump(result, file)
    os.replace(out + ".tmp", out)
    return code


def main() -> None:
    from kgbias import TrainConfig
    from kgbias.training import load_graph

    config = TrainConfig.from_dict(json.loads(sys.argv[1]))
    kg = load_graph(config)
    print("ready", flush=True)
    for line in sys.stdin:
        command, *args = line.split()
        if command == "start":
            pid = os.fork()
            if pid == 0:
                code = 3
                try:
                    code = child(config, kg, *args)
                finally:
                    os._exit(code)
            print(pid, flush=True)
        elif command == "kill":
            pid = int(args[0])
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                print(f"exited {os.waitstatus_to_exitcode(status)}", flush=True)
            else:
                os.kill(pid, signal.SIGKILL)
                _, status = os.waitpid(pid, 0)
                code = os.waitstatus_to_exitcode(status)
                print("killed" if code == -signal.SIGKILL else f"exited {code}", flush=True)
        elif command == "wait":
            _, status = os.waitpid(int(args[0]), 0)
            print(f"exited {os.waitstatus_to_exitcode(status)}", flush=True)
        elif command == "quit":
            break


if __name__ == "__main__":
    main()
