using System.Security.Cryptography;
using Identity.Core.Data;
using Identity.Core.Users;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;

namespace Identity.Server.Account;

/// <summary>
/// The embedded default's demo user: created on a first run with no users, with a generated password shown once
/// on the console (never logged, never stored in clear). Real user management arrives with the admin API.
/// </summary>
public sealed class DemoUserSeeder(UserManager<ApplicationUser> users, UserOperations operations, IOptions<DatabaseOptions> database,
    IOptions<Clients.ClientCatalogueOptions> oidc)
{
    public const string DemoEmail = "demo@identity.local";

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

        // A user of no account (no region sees it), created by the authority itself: audited as user.created by system.
        var password = NewPassword();
        var created = await operations.CreateAsync(new NewUser(null, DemoEmail, "Demo User", null, EmailConfirmed: true), password,
            UserLockout.System, CancellationToken.None);
        if (!created.Result.Succeeded)
        {
            throw new InvalidOperationException("Could not create the demo user: "
                + string.Join("; ", created.Result.Errors?.SelectMany(e => e.Value) ?? [created.Result.Outcome.ToString()]));
        }

        Console.WriteLine($"""

            ==== Demo user (password shown once) ====
              email:    {DemoEmail}
              password: {password}
            =========================================

            """);
    }
}
