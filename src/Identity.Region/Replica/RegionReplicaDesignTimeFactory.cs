using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design;

namespace Identity.Region.Replica;

/// <summary>
/// For <c>dotnet ef migrations add</c> only: the library's migrations are generated on SQLite, the default replica
/// store. A host on another provider keeps its own migrations assembly (<c>MigrationsAssembly</c>).
/// </summary>
public sealed class RegionReplicaDesignTimeFactory : IDesignTimeDbContextFactory<RegionReplicaDbContext>
{
    public RegionReplicaDbContext CreateDbContext(string[] args) =>
        new(new DbContextOptionsBuilder<RegionReplicaDbContext>().UseSqlite("Data Source=replica-design.db").Options);
}
