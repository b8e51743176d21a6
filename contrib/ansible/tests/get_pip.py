# A stand-in for ansible-test's pip bootstrap script (get-pip.py), which ansible-test
# downloads from ci-files.testing.ansible.com: a host this project's machines cannot reach.
# It does what that script does — put pip, at the versions asked for, into the empty virtual
# environment it runs in — from Python's own ensurepip and then PyPI, which they reach.
# scripts/test copies it to ~/.ansible/test/cache/get_pip_<version>.py.
import ensurepip
import subprocess
import sys

ensurepip.bootstrap(upgrade=False)
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install"] + sys.argv[1:]))
