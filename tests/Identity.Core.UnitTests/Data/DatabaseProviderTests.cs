using Identity.Core.Data;
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
}
