class Refusal(Exception):
    """An action the case cannot take: refused before it changes anything.

    `code` is machine-readable and stable; `message` is a sentence for a person.
    """

    def __init__(self, code: str, message: str, **details: object) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


# HTTP status the API answers each refusal code with.
REFUSAL_STATUS: dict[str, int] = {
    "stage_conflict": 409,
    "case_closed": 409,
    "role_not_allowed": 403,
    "not_your_team": 403,
    "not_your_area": 403,
    "not_your_case": 403,
    "self_verification": 403,
    "category_required": 422,
    "invalid_duplicate": 422,
    "not_a_case_action": 422,
    # 吹哨报到
    "invalid_whistle": 422,
    "not_summoned": 403,
    "whistle_closed": 409,
    "already_reported": 409,
    "not_reported_in": 409,
    "already_done": 409,
    # 延期
    "no_time_limit": 409,
    "extension_pending": 409,
    "extension_too_late": 409,
    "no_extension_pending": 409,
}
