using Identity.Core.Data;
using Microsoft.Data.SqlClient;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Identity.Core.UnitTests.Data;

public sealed class DatabaseProviderTests
{
    [Fact]
    public void WithAutoPrepare_NotSaid_TurnsItOn()
    {
        var result = new NpgsqlConnectionStringBuilder(DatabaseProviderExtensions.WithAutoPrepare("Host=db;Database=identity;Username=identity"));

        Assert.Equal(64, result.MaxAutoPrepare);
        Assert.Equal(("db", "identity"), (result.Host, result.Database));
    }

    [Theory]
    [InlineData("Host=db;Max Auto Prepare=0")]
    [InlineData("Host=db;MaxAutoPrepare=0")]
    [InlineData("Host=db;max auto prepare=10")]
    public void WithAutoPrepare_SaidInTheConnectionString_KeptAsSaid(string connectionString)
    {
        Assert.Equal(connectionString, DatabaseProviderExtensions.WithAutoPrepare(connectionString));
    }

    [Fact]
    public void WithoutResetOnClose_NotSaid_PooledConnectionsAreNotReset()
    {
        var result = new NpgsqlConnectionStringBuilder(DatabaseProviderExtensions.WithoutResetOnClose("Host=db;Database=identity;Max Auto Prepare=64"));

        Assert.True(result.NoResetOnClose);
        Assert.Equal(("db", "identity", 64), (result.Host, result.Database, result.MaxAutoPrepare));
    }

    [Theory]
    [InlineData("Host=db;No Reset On Close=false")]
    [InlineData("Host=db;NoResetOnClose=false")]
    [InlineData("Host=db;no reset on close=true")]
    public void WithoutResetOnClose_SaidInTheConnectionString_KeptAsSaid(string connectionString)
    {
        Assert.Equal(connectionString, DatabaseProviderExtensions.WithoutResetOnClose(connectionString));
    }

    [Fact]
    public void WithTimeouts_NotSaid_BoundedByTheOptions()
    {
        var connect = TimeSpan.FromSeconds(5);
        var command = TimeSpan.FromSeconds(10);

        var postgres = new NpgsqlConnectionStringBuilder(DatabaseProvider.PostgreSql.WithTimeouts("Host=db;Database=identity", connect, command));
        var sqlServer = new SqlConnectionStringBuilder(DatabaseProvider.SqlServer.WithTimeouts("Server=db;Database=identity", connect, command));
        var sqlite = new SqliteConnectionStringBuilder(DatabaseProvider.Sqlite.WithTimeouts("Data Source=identity.db;Cache=Shared", connect, command));

        Assert.Equal((5, 10, "db"), (postgres.Timeout, postgres.CommandTimeout, postgres.Host));
        Assert.Equal((5, 10, "db"), (sqlServer.ConnectTimeout, sqlServer.CommandTimeout, sqlServer.DataSource));
        Assert.Equal((10, SqliteCacheMode.Shared), (sqlite.DefaultTimeout, sqlite.Cache));
    }

    [Theory]
    [InlineData(DatabaseProvider.PostgreSql, "Host=db;Timeout=30;Command Timeout=60")]
    [InlineData(DatabaseProvider.SqlServer, "Server=db;Connect Timeout=30;Command Timeout=60")]
    [InlineData(DatabaseProvider.Sqlite, "Data Source=x.db;Default Timeout=60")]
    public void WithTimeouts_SaidInTheConnectionString_KeptAsSaid(DatabaseProvider provider, string connectionString)
    {
        var bounded = provider.WithTimeouts(connectionString, TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(10));

        Assert.Contains("60", bounded, StringComparison.Ordinal);
        Assert.DoesNotContain("=10", bounded.Replace(" ", "", StringComparison.Ordinal), StringComparison.Ordinal);
    }
}
