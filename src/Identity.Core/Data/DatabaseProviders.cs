using System.Collections.Concurrent;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata;

namespace Identity.Core.Data;

/// <summary>Which database a context runs on, where a command is written for one provider only.</summary>
public static class DatabaseProviders
{
    private const string PostgreSqlProvider = "Npgsql.EntityFrameworkCore.PostgreSQL";

    // By model (each provider builds its own): DatabaseFacade.ProviderName resolves the provider's services on every
    // call (1 % of the write path's CPU, perf).
    private static readonly ConcurrentDictionary<IModel, bool> OnPostgreSql = new();

    public static bool IsPostgreSql(DbContext db) =>
        OnPostgreSql.GetOrAdd(db.Model, static (_, db) => db.Database.ProviderName == PostgreSqlProvider, db);
}
