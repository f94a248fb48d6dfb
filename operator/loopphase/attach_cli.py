"""`loopphase attach ROLE [--spec FILE | --state-dir DIR | --shim-state DIR | --cluster NAME] [--rw]`.

A local run: opens the agent's live tmux session (read-only by default: keys do nothing but
detach; ``--rw`` to type), found from the run's spec or state directory. A LoopPhase on
a cluster (``--cluster NAME``, with ``-n NS`` and ``--context C`` as kubectl takes them): runs
the same command inside the agent pod through ``kubectl exec -it`` with your own credentials
(the operator never execs), printing it first; ``--print`` only prints it. In the pod the
shim's state directory is ``/work/.loopphase/ROLE`` (the shim's ``--state-dir``), where it
records its tmux socket name; ``loopphase attach`` there reads it and attaches to the session
``agent``, read-only unless ``--rw``. Detach with Ctrl-b d; the agent keeps running.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys

from loopphase.api.spec import Role
from loopphase.runner import attach as local
from loopphase.runtime.k8s_objects import AGENT_CONTAINER, STATE_ROOT, pod_name


def cluster_argv(name: str, role: Role, *, namespace: str | None = None,
                 context: str | None = None, read_write: bool = False) -> list[str]:
    """The ``kubectl exec`` argv attaching to ``role``'s session of LoopPhase ``name``: the
    agent pod ``NAME-ROLE``, its container ``agent``, ``loopphase attach ROLE --shim-state
    /work/.loopphase/ROLE`` in it. No ``-n``/``--context``: kubectl's own defaults."""
    argv = ["kubectl", "exec", "-it"]
    if context:
        argv += ["--context", context]
    if namespace:
        argv += ["-n", namespace]
    argv += [pod_name(name, role), "-c", AGENT_CONTAINER, "--",
             "loopphase", "attach", role, "--shim-state", f"{STATE_ROOT}/{role}"]
    if read_write:
        argv.append("--rw")
    return argv


def build_parser() -> argparse.ArgumentParser:
    parser = local.build_parser()
    parser.description = __doc__.replace("``", "`").strip() if __doc__ else None
    parser.add_argument("--cluster", metavar="NAME",
                        help="the LoopPhase NAME on a cluster: attach through kubectl exec")
    parser.add_argument("-n", "--namespace", help="with --cluster: its namespace (kubectl's -n)")
    parser.add_argument("--context", help="with --cluster: the kubeconfig context (kubectl's)")
    parser.add_argument("--print", action="store_true", dest="print_only",
                        help="with --cluster: print the kubectl command, do not run it")
    return parser


def main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.cluster is None:
        if args.namespace or args.context or args.print_only:
            parser.error("-n/--namespace, --context and --print go with --cluster NAME")
        return local.main(argv)
    if args.spec is not None or args.state_dir is not None or args.shim_state is not None:
        parser.error("--cluster NAME attaches in the agent pod: give no --spec, --state-dir "
                     "or --shim-state with it")
    command = cluster_argv(args.cluster, args.role, namespace=args.namespace,
                           context=args.context, read_write=args.rw)
    if args.print_only:
        print(shlex.join(command))
        return 0
    print(f"running: {shlex.join(command)}", file=sys.stderr, flush=True)
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        print("loopphase attach: kubectl is not installed here: run the command above where "
              "it is", file=sys.stderr)
        return 2
    os.execv(kubectl, command)
    return 0  # not reached: exec replaces this process
