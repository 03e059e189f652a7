from alembic import context

from ledger.db import make_engine
from ledger.tables import Base

config = context.config


def run() -> None:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        from config.settings import Settings
        url = Settings().ledger_url
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=Base.metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata,
                          render_as_batch=connection.dialect.name == "sqlite")
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run()
