using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Identity.Region.Replica.Migrations
{
    /// <inheritdoc />
    public partial class InitialReplica : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "ReplicaAccounts",
                columns: table => new
                {
                    AccountId = table.Column<Guid>(type: "TEXT", nullable: false),
                    Name = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    Status = table.Column<string>(type: "TEXT", maxLength: 32, nullable: false),
                    Regions = table.Column<string>(type: "TEXT", maxLength: 1024, nullable: false),
                    InRegion = table.Column<bool>(type: "INTEGER", nullable: false),
                    MfaRequirement = table.Column<string>(type: "TEXT", maxLength: 32, nullable: false),
                    SessionLifetime = table.Column<TimeSpan>(type: "TEXT", nullable: true),
                    Version = table.Column<long>(type: "INTEGER", nullable: false),
                    UpdatedAt = table.Column<DateTime>(type: "TEXT", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_ReplicaAccounts", x => x.AccountId);
                });

            migrationBuilder.CreateTable(
                name: "ReplicaState",
                columns: table => new
                {
                    Id = table.Column<int>(type: "INTEGER", nullable: false),
                    LastFullResyncAt = table.Column<DateTime>(type: "TEXT", nullable: true),
                    LastFullResyncUsers = table.Column<int>(type: "INTEGER", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_ReplicaState", x => x.Id);
                });

            migrationBuilder.CreateTable(
                name: "ReplicaUsers",
                columns: table => new
                {
                    UserId = table.Column<string>(type: "TEXT", maxLength: 128, nullable: false),
                    AccountId = table.Column<Guid>(type: "TEXT", nullable: false),
                    Email = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    DisplayName = table.Column<string>(type: "TEXT", maxLength: 256, nullable: true),
                    Role = table.Column<string>(type: "TEXT", maxLength: 32, nullable: false),
                    Status = table.Column<string>(type: "TEXT", maxLength: 32, nullable: false),
                    MfaEnrolled = table.Column<bool>(type: "INTEGER", nullable: false),
                    Version = table.Column<long>(type: "INTEGER", nullable: false),
                    Deleted = table.Column<bool>(type: "INTEGER", nullable: false),
                    DeletedWithAccount = table.Column<bool>(type: "INTEGER", nullable: false),
                    SessionsRevokedAt = table.Column<DateTime>(type: "TEXT", nullable: true),
                    UpdatedAt = table.Column<DateTime>(type: "TEXT", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_ReplicaUsers", x => x.UserId);
                });

            migrationBuilder.CreateIndex(
                name: "IX_ReplicaUsers_AccountId",
                table: "ReplicaUsers",
                column: "AccountId");

            migrationBuilder.CreateIndex(
                name: "IX_ReplicaUsers_Email",
                table: "ReplicaUsers",
                column: "Email");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "ReplicaAccounts");

            migrationBuilder.DropTable(
                name: "ReplicaState");

            migrationBuilder.DropTable(
                name: "ReplicaUsers");
        }
    }
}
