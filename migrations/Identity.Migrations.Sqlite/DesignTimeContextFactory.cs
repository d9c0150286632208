using Identity.Core.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design;

namespace Identity.Migrations.Sqlite;

/// <summary>Lets <c>dotnet ef migrations add</c> build the model for this provider without a running database.</summary>
public sealed class DesignTimeContextFactory : IDesignTimeDbContextFactory<AuthorityDbContext>
{
    public AuthorityDbContext CreateDbContext(string[] args)
    {
        var builder = new DbContextOptionsBuilder<AuthorityDbContext>();
        builder.UseAuthorityDatabase(DatabaseProvider.Sqlite, "Data Source=design-time.db");
        builder.UseServerIdentityOptions();
        return new AuthorityDbContext(builder.Options);
    }
}
