"""Tests of server.py itself (run by scripts/interop with the venv's Python, before the suite).

    interop/dot/.venv/bin/python -m unittest discover -s interop/dot
"""

import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))

# One server's preparation, whose copy of its database to the template waits until every
# other preparation has made its copy too: the interleaving that parallel test starts hit
# only now and then, made certain.
PREPARE_IN_STEP = r"""
import os, shutil, sys, time
sys.path.insert(0, sys.argv[1])
markers, me, count = sys.argv[2], sys.argv[3], int(sys.argv[4])
real_copyfile = shutil.copyfile

def copy_then_wait(src, dst, *args, **kwargs):
    result = real_copyfile(src, dst, *args, **kwargs)
    open(os.path.join(markers, me), "w").close()
    while len(os.listdir(markers)) < count:
        time.sleep(0.01)
    return result

shutil.copyfile = copy_then_wait
import server
server.prepare(os.environ["DOT_DATABASE"])
"""


class TemplateTest(unittest.TestCase):
    def test_servers_starting_together_all_make_the_template(self):
        count = 3
        with tempfile.TemporaryDirectory() as work:
            markers = os.path.join(work, "markers")
            os.mkdir(markers)
            template = os.path.join(work, "templates", "template.sqlite3")
            os.mkdir(os.path.dirname(template))
            starts = []
            for i in range(count):
                env = dict(
                    os.environ,
                    DJANGO_SETTINGS_MODULE="authed_dot.settings",
                    DOT_DATABASE=os.path.join(work, "db%d.sqlite3" % i),
                    DOT_TEMPLATE_DATABASE=template,
                )
                starts.append(
                    subprocess.Popen(
                        [sys.executable, "-c", PREPARE_IN_STEP, HERE, markers, str(i), str(count)],
                        env=env,
                        stderr=subprocess.PIPE,
                        text=True,
                    )
                )
            for start in starts:
                _, stderr = start.communicate(timeout=600)
                self.assertEqual(start.returncode, 0, stderr)
            self.assertEqual(os.listdir(os.path.dirname(template)), ["template.sqlite3"])


if __name__ == "__main__":
    unittest.main()
