using System.Security.Cryptography;
using Identity.Core.Data;
using Identity.Core.Users;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;

namespace Identity.Server.Account;

/// <summary>
/// The embedded default's demo user and bootstrap platform administrator: created on a first run with no users, each
/// with a generated password shown once on the console (never logged, never stored in clear).
/// </summary>
public sealed class DemoUserSeeder(UserManager<ApplicationUser> users, UserOperations operations, IOptions<DatabaseOptions> database,
    IOptions<Clients.ClientCatalogueOptions> oidc, IConfiguration configuration)
{
    public const string DemoEmail = "demo@identity.local";

    /// <summary>The bootstrap administrator of the embedded default: a platform administrator, the admin console's first user.</summary>
    public const string AdminEmail = "admin@identity.local";

    /// <summary>120 random bits, plus the fixed "Demo-" and "9" so that every character class Identity asks for is present.</summary>
    internal static string NewPassword() =>
        "Demo-" + Convert.ToBase64String(RandomNumberGenerator.GetBytes(15)).Replace("/", "_", StringComparison.Ordinal).Replace("+", "-", StringComparison.Ordinal) + "9";

    public async Task ApplyAsync()
    {
        if (database.Value.Provider != DatabaseProvider.Sqlite || !oidc.Value.SeedDemoClient || oidc.Value.Clients.Count > 0
            || users.Users.Any())
        {
            return;
        }

        // Users of no account (no region sees them), created by the authority itself: audited as user.created by system.
        var password = await CreateAsync(new NewUser(null, DemoEmail, "Demo User", null, EmailConfirmed: true));
        var adminPassword = await CreateAsync(new NewUser(null, AdminEmail, "Administrator", null, EmailConfirmed: true, PlatformAdmin: true));
        var console = new Uri(AdminConsole.ConsoleClient.Origin(configuration), AdminConsole.ConsoleClient.BasePath.TrimStart('/'));

        Console.WriteLine($"""

            ==== Demo user and administrator (passwords shown once) ====
              user:     {DemoEmail}  password: {password}
              console:  {console}  (platform administrator)
              admin:    {AdminEmail}  password: {adminPassword}
                        the first sign-in sets up an authenticator app: every administrator uses a second factor
            ============================================================

            """);
    }

    private async Task<string> CreateAsync(NewUser user)
    {
        var password = NewPassword();
        var created = await operations.CreateAsync(user, password, UserLockout.System, CancellationToken.None);
        if (!created.Result.Succeeded)
        {
            throw new InvalidOperationException($"Could not create {user.Email}: "
                + string.Join("; ", created.Result.Errors?.SelectMany(e => e.Value) ?? [created.Result.Outcome.ToString()]));
        }

        return password;
    }
}
