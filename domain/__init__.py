"""Pure domain of bihuan: stages, actions, who may do them, and the case state machine.

Nothing here does I/O, so workflows, activities and the API can all import it.
"""
