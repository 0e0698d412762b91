"""Run the web server and the job worker together; one Ctrl-C stops both."""
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Start the web server and a django-q2 worker side by side (development and demo)."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=settings.PUBLIC_PORT)

    def handle(self, *args, addr, port, **options):
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        procs = [
            subprocess.Popen([*manage, "runserver", f"{addr}:{port}", "--noreload"]),
            subprocess.Popen([*manage, "qcluster"]),
        ]
        self.stdout.write(self.style.SUCCESS(
            f"\n  Open http://demo.{settings.BASE_DOMAIN}:{port}/  (platform admin: http://{settings.BASE_DOMAIN}:{port}/admin/)\n"
            "  Press Ctrl-C to stop the web server and the worker.\n"
        ))
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        while not stopping and all(p.poll() is None for p in procs):
            time.sleep(0.5)
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        failed = [p.args[2] for p in procs if p.returncode not in (0, -signal.SIGINT, None) and not stopping]
        if failed:
            raise SystemExit(f"stopped because {', '.join(failed)} exited")
