from enum import StrEnum


class Role(StrEnum):
    HOTLINE = "hotline"
    REPORTER = "reporter"
    DISPATCHER = "dispatcher"
    OFFICER = "officer"
    DEPARTMENT = "department"
    COMMUNITY = "community"
    INSPECTOR = "inspector"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"
    # Timers and the workflow itself act as "system"; no request may claim it.
    SYSTEM = "system"
