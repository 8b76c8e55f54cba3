"""Every exit status opsctl can end with.

0-3 follow the monitoring-plugins (Nagios) convention so a command can be plugged into
Nagios, Icinga or Sensu unchanged; 64 and 78 come from BSD ``sysexits.h`` and 75
(``EX_TEMPFAIL``) tells a scheduler that trying again later is the right answer.
"""

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3
    USAGE = 64
    SKIPPED = 75
    CONFIG = 78
    SIGINT = 130
    SIGTERM = 143


# A job *succeeded* when it did its work, whatever it found: 0 (ok), 1 (warning) and
# 2 (critical finding, e.g. an alert raised) all mean the job ran. 3 and above mean it could
# not do its work. Run statistics and freshness checks share this definition.
JOB_SUCCEEDED: frozenset[int] = frozenset({ExitCode.OK, ExitCode.WARNING, ExitCode.CRITICAL})
