using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Identity.Core.Data;

/// <summary>
/// ASP.NET Core Identity builds its part of the model from <see cref="IdentityOptions"/> found in the
/// application's service provider (schema version 3 adds the passkey table). The migrations projects' design-time
/// factories have no application, so they get this one, holding the options the server uses.
/// </summary>
public static class DesignTimeServices
{
    public static void ConfigureIdentityStore(StoreOptions stores) => stores.SchemaVersion = IdentitySchemaVersions.Version3;

    public static DbContextOptionsBuilder UseServerIdentityOptions(this DbContextOptionsBuilder builder) =>
        builder.UseApplicationServiceProvider(new ServiceCollection()
            .Configure<IdentityOptions>(o => ConfigureIdentityStore(o.Stores))
            .BuildServiceProvider());
}
