using Identity.Core.Data;
using Npgsql;

namespace Identity.Server.IntegrationTests.Infrastructure;

/// <summary>A real, empty database for one test class, dropped afterwards.</summary>
public abstract class TestDatabase : IAsyncLifetime
{
    public abstract DatabaseProvider Provider { get; }

    public string ConnectionString { get; protected set; } = "";

    public abstract Task InitializeAsync();

    public abstract Task DisposeAsync();
}

public sealed class SqliteTestDatabase : TestDatabase
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "identity-tests", Guid.NewGuid().ToString("n"));

    public override DatabaseProvider Provider => DatabaseProvider.Sqlite;

    public override Task InitializeAsync()
    {
        Directory.CreateDirectory(_directory);
        ConnectionString = $"Data Source={Path.Combine(_directory, "identity.db")};Cache=Shared;Pooling=False";
        return Task.CompletedTask;
    }

    public override Task DisposeAsync()
    {
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // A file still open by a finishing host; the temp folder is cleaned by the OS.
        }

        return Task.CompletedTask;
    }
}

/// <summary>
/// A fresh database on the private PostgreSQL cluster that <c>scripts/test.sh</c> starts and names in
/// <c>IDENTITY_TEST_POSTGRES</c>. Without it the tests fail (they never skip): run them through the script.
/// </summary>
public sealed class PostgresTestDatabase : TestDatabase
{
    public const string EnvironmentVariable = "IDENTITY_TEST_POSTGRES";
    private readonly string _name = "identity_test_" + Guid.NewGuid().ToString("n")[..12];
    private string _admin = "";

    public override DatabaseProvider Provider => DatabaseProvider.PostgreSql;

    public static string AdminConnectionString => Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } value
        ? value
        : throw new InvalidOperationException(
            $"{EnvironmentVariable} is not set: run the tests with ./scripts/test.sh, which starts a private PostgreSQL cluster.");

    public override async Task InitializeAsync()
    {
        _admin = AdminConnectionString;
        await using var connection = new NpgsqlConnection(_admin);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"CREATE DATABASE \"{_name}\"", connection);
        await command.ExecuteNonQueryAsync();
        ConnectionString = new NpgsqlConnectionStringBuilder(_admin) { Database = _name }.ConnectionString;
    }

    public override async Task DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        await using var connection = new NpgsqlConnection(_admin);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{_name}\" WITH (FORCE)", connection);
        await command.ExecuteNonQueryAsync();
    }
}
