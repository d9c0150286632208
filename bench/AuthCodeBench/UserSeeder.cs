using Identity.Core.Data;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace AuthCodeBench;

/// <summary>
/// Creates the bench user in the server's PostgreSQL database with the server's own model and ASP.NET Core Identity
/// (same store options, same password hasher), so that the login page accepts it. Run it after the server has
/// migrated the database.
/// </summary>
public static class UserSeeder
{
    public static async Task<string> EnsureUserAsync(string connectionString, string email, string password)
    {
        var services = new ServiceCollection();
        services.AddLogging(logging => logging.SetMinimumLevel(LogLevel.Warning));
        services.AddDbContext<AuthorityDbContext>(o => o.UseAuthorityDatabase(DatabaseProvider.PostgreSql, connectionString));
        services.AddIdentityCore<ApplicationUser>(o =>
            {
                o.User.RequireUniqueEmail = true;
                o.Password.RequiredLength = 12;
                DesignTimeServices.ConfigureIdentityStore(o.Stores);
            })
            .AddEntityFrameworkStores<AuthorityDbContext>();

        await using var provider = services.BuildServiceProvider();
        await using var scope = provider.CreateAsyncScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<ApplicationUser>>();

        var user = await users.FindByEmailAsync(email);
        if (user is null)
        {
            user = new ApplicationUser
            {
                UserName = email,
                Email = email,
                EmailConfirmed = true,
                DisplayName = "Bench User",
                CreatedAt = DateTimeOffset.UtcNow,
            };
            Check(await users.CreateAsync(user, password), "create the user");
            return "created";
        }

        if (await users.CheckPasswordAsync(user, password))
        {
            return "exists";
        }

        // An earlier run's user with another password: the bench signs in with this run's password.
        Check(await users.RemovePasswordAsync(user), "remove the old password");
        Check(await users.AddPasswordAsync(user, password), "set the password");
        return "password_reset";
    }

    private static void Check(IdentityResult result, string what)
    {
        if (!result.Succeeded)
        {
            throw new InvalidOperationException($"Could not {what}: " + string.Join("; ", result.Errors.Select(e => $"{e.Code}: {e.Description}")));
        }
    }
}
